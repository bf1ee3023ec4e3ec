// The side panel: hovering a node shows its full action, decision record and state; a click pins it,
// Escape or a click on empty space goes back to the returned path. Text goes in through textContent
// only, never as markup. Each node's <title> is the fallback without JavaScript and is removed here.
(function(){
var data=JSON.parse(document.getElementById('trace-data').textContent);
var pathView=document.getElementById('path-view'), nodeView=document.getElementById('node-view');
var groups={}, pinned=null;

function el(tag,cls,text){
  var e=document.createElement(tag);
  if(cls) e.className=cls;
  if(text!==undefined&&text!==null) e.textContent=text;
  return e;
}
function table(rows){
  var tb=el('table');
  rows.forEach(function(r){
    var tr=el('tr'); tr.appendChild(el('td',null,r[0])); tr.appendChild(el('td',null,r[1])); tb.appendChild(tr);
  });
  return tb;
}
function select(id){
  document.querySelectorAll('svg.t .nd.sel').forEach(function(g){g.classList.remove('sel');});
  if(id!==null&&groups[id]) groups[id].classList.add('sel');
}
function show(id){
  var n=data.nodes[id]; if(!n) return;
  nodeView.textContent='';
  var top=el('div','ph'); top.appendChild(el('span','h',n.head));
  var back=el('button','back','back to path'); back.type='button';
  back.addEventListener('click',function(e){e.stopPropagation(); unpin();});
  top.appendChild(back); nodeView.appendChild(top);
  if(n.flags) nodeView.appendChild(el('div','flags',n.flags));
  nodeView.appendChild(el('div','k','action'));
  nodeView.appendChild(el('pre','act',n.action));
  if(n.decision.length){nodeView.appendChild(el('div','k','decision record')); nodeView.appendChild(table(n.decision));}
  if(n.search.length){nodeView.appendChild(el('div','k','search')); nodeView.appendChild(table(n.search));}
  if(n.state){nodeView.appendChild(el('div','k','state')); nodeView.appendChild(el('pre','st',n.state));}
  pathView.hidden=true; nodeView.hidden=false; select(id);
}
function home(){nodeView.hidden=true; pathView.hidden=false; select(null);}
function pin(id){pinned=id; show(id);}
function unpin(){pinned=null; home();}
function leave(){if(pinned===null) home(); else show(pinned);}

document.querySelectorAll('svg.t .nd').forEach(function(g){
  var id=+g.getAttribute('data-id'); groups[id]=g;
  var t=g.querySelector('title'); if(t) g.removeChild(t);
  g.setAttribute('tabindex','0');
  g.addEventListener('mouseenter',function(){show(id);});
  g.addEventListener('mouseleave',leave);
  g.addEventListener('focus',function(){show(id);});
  g.addEventListener('blur',leave);
  g.addEventListener('click',function(e){e.stopPropagation(); pin(id);});
  g.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault(); pin(id);}});
});
document.querySelectorAll('#path-view [data-id]').forEach(function(b){
  var id=+b.getAttribute('data-id');
  function go(){
    pin(id);
    if(groups[id]) groups[id].scrollIntoView({block:'nearest',inline:'center'});
  }
  b.addEventListener('click',function(e){e.stopPropagation(); go();});
  b.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault(); go();}});
});
document.querySelector('main.tree').addEventListener('click',unpin);
document.addEventListener('keydown',function(e){if(e.key==='Escape') unpin();});

// A tree wider than its box opens scrolled to centre the returned path.
var box=document.querySelector('main.tree'), onPath=document.querySelectorAll('svg.t .nd.on-path');
if(onPath.length&&box.scrollWidth>box.clientWidth){
  var lo=Infinity, hi=-Infinity;
  onPath.forEach(function(g){var r=g.getBoundingClientRect(); lo=Math.min(lo,r.left); hi=Math.max(hi,r.right);});
  box.scrollLeft=(lo+hi)/2-box.getBoundingClientRect().left-box.clientWidth/2;
}
})();
