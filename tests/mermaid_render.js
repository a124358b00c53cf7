// Runs in the browser after Mermaid's own mermaid.min.js: draws the flowchart in
// window.MERMAID_TEXT as GitHub would (securityLevel strict) and writes JSON into
// <pre id="result">: the text of every node and subgraph title as drawn, the pairs of
// boxes that overlap (node with node, node with a subgraph's title), or Mermaid's error.
function overlaps(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
mermaid.render("picture", window.MERMAID_TEXT).then(
  (drawn) => {
    const holder = document.createElement("div");
    holder.innerHTML = drawn.svg;
    document.body.appendChild(holder);
    const nodes = [...holder.querySelectorAll("g.node")];
    const titles = [...holder.querySelectorAll("g.cluster .cluster-label")];
    const boxes = [
      ...nodes.map((n) => [n.textContent, n.getBoundingClientRect()]),
      ...titles.map((t) => ["title " + t.textContent, t.getBoundingClientRect()]),
    ];
    const overlapping = [];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        if (j >= nodes.length && i >= nodes.length) continue; // two titles: nested, may touch
        if (overlaps(boxes[i][1], boxes[j][1])) overlapping.push([boxes[i][0], boxes[j][0]]);
      }
    }
    document.getElementById("result").textContent = JSON.stringify({
      nodes: nodes.map((n) => n.textContent),
      clusters: titles.map((t) => t.textContent),
      overlapping,
    });
  },
  (error) => {
    document.getElementById("result").textContent = JSON.stringify({ error: String(error) });
  },
);
