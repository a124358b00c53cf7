// Runs in the browser after Mermaid's own mermaid.min.js: draws the flowchart in
// window.MERMAID_TEXT as GitHub would (securityLevel strict) and writes JSON into
// <pre id="result">: the text of every node and subgraph as drawn, or Mermaid's error.
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
mermaid.render("picture", window.MERMAID_TEXT).then(
  (drawn) => {
    const holder = document.createElement("div");
    holder.innerHTML = drawn.svg;
    document.body.appendChild(holder);
    const nodes = [...holder.querySelectorAll("g.node")].map((n) => n.textContent);
    const clusters = [...holder.querySelectorAll("g.cluster")].map((n) => n.textContent);
    document.getElementById("result").textContent = JSON.stringify({ nodes, clusters });
  },
  (error) => {
    document.getElementById("result").textContent = JSON.stringify({ error: String(error) });
  },
);
