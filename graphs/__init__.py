"""The composable LangGraph search graph (propose → srm → expand); see the README's layout."""
