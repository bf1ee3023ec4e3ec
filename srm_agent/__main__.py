import sys

from srm_agent.cli import main

sys.exit(main())
