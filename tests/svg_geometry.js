// Runs in the browser over an inline SVG drawn by Graphviz: measures every node as the
// browser lays it out (real fonts, real text widths) and writes JSON into <pre id="result">:
// the nodes' texts, the texts that stick out of their node's shape, and the pairs of
// nodes whose drawn boxes (shape and text together) overlap.
function box(el) {
  const b = el.getBBox();
  const m = el.getCTM();
  return { x: b.x * m.a + m.e, y: b.y * m.d + m.f, w: b.width * m.a, h: b.height * m.d };
}
function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}
function inside(inner, outer) {
  return inner.x >= outer.x - 0.5 && inner.x + inner.w <= outer.x + outer.w + 0.5 &&
    inner.y >= outer.y - 0.5 && inner.y + inner.h <= outer.y + outer.h + 0.5;
}
const result = { nodes: 0, texts: [], outside: [], overlapping: [] };
const nodes = [];
for (const g of document.querySelectorAll("g.node")) {
  const title = g.querySelector("title").textContent;
  const shape = g.querySelector("polygon, path, ellipse");
  const whole = box(g);
  nodes.push({ title, whole });
  for (const t of g.querySelectorAll("text")) {
    result.texts.push(t.textContent);
    // A node of shape=plain (the legend) has no outline of its own.
    if (shape && title !== "legend" && !inside(box(t), box(shape))) {
      result.outside.push([title, t.textContent]);
    }
  }
}
result.nodes = nodes.length;
for (let i = 0; i < nodes.length; i++) {
  for (let j = i + 1; j < nodes.length; j++) {
    if (overlaps(nodes[i].whole, nodes[j].whole)) {
      result.overlapping.push([nodes[i].title, nodes[j].title]);
    }
  }
}
document.getElementById("result").textContent = JSON.stringify(result);
