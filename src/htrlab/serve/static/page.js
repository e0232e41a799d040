// htrlab's reading page: sends the image to POST /v1/read and shows the lines found, their text and confidence.
"use strict";
const $ = (id) => document.getElementById(id);
const LOW = 0.6; // lines read with less confidence are marked
let chosen = null;
let lastText = "";

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function choose(file) {
  if (!file) return;
  chosen = file;
  $("read").disabled = false;
  status(`${file.name || "pasted image"}: ready to read`);
  if (file.type.startsWith("image/")) $("preview").src = URL.createObjectURL(file);
  read();
}

function headers() {
  const token = $("token").value;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function post(format) {
  const form = new FormData();
  form.append("file", chosen, chosen.name || "pasted.png");
  for (const key of ["layout", "decoder", "orientation"]) form.append(key, $(key).value);
  const reply = await fetch(`/v1/read?format=${format}`, { method: "POST", body: form, headers: headers() });
  if (reply.status === 401) $("tokenbox").hidden = false;
  if (!reply.ok) {
    let message = `${reply.status} ${reply.statusText}`;
    try { message = (await reply.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return reply;
}

function draw(page) {
  const svg = $("overlay");
  svg.innerHTML = "";
  svg.setAttribute("viewBox", `0 0 ${page.width} ${page.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  page.lines.forEach((line, k) => {
    const poly = document.createElementNS("http://www.w3.org/2000/svg", "polygon");
    poly.setAttribute("points", line.polygon.map((p) => p.join(",")).join(" "));
    poly.setAttribute("fill", "none");
    poly.setAttribute("stroke", line.confidence < LOW ? "#b91c1c" : "#c2410c");
    poly.setAttribute("stroke-width", Math.max(page.width, page.height) / 400);
    svg.appendChild(poly);
    const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
    label.setAttribute("x", line.box[0]);
    label.setAttribute("y", line.box[1]);
    label.setAttribute("font-size", Math.max(line.box[3] / 2, 10));
    label.setAttribute("fill", "#c2410c");
    label.textContent = String(k + 1);
    svg.appendChild(label);
  });
}

function show(pages) {
  const list = $("lines");
  list.innerHTML = "";
  const texts = [];
  pages.forEach((page) => {
    if (page.error) { status(page.error, true); return; }
    page.lines.forEach((line) => {
      const item = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = line.text;
      if (line.confidence < LOW) { text.className = "low"; text.title = "low confidence"; }
      const conf = document.createElement("span");
      conf.className = "conf";
      conf.textContent = ` (${Math.round(100 * line.confidence)} %)`;
      item.append(text, conf);
      list.appendChild(item);
      texts.push(line.text);
    });
  });
  lastText = texts.join("\n");
  if (pages.length && !pages[0].error) draw(pages[0]);
  $("result").hidden = false;
  $("actions").hidden = false;
}

async function read() {
  if (!chosen) return;
  status("reading ...");
  $("read").disabled = true;
  try {
    const reply = await post("json");
    const body = await reply.json();
    const pages = Array.isArray(body) ? body : [body];
    show(pages);
    const n = pages.reduce((sum, p) => sum + (p.lines ? p.lines.length : 0), 0);
    const turned = pages[0] && pages[0].rotation ? `, turned ${pages[0].rotation} degrees` : "";
    status(`${n} line${n === 1 ? "" : "s"} read${turned}`);
  } catch (error) {
    status(error.message, true);
  } finally {
    $("read").disabled = false;
  }
}

async function download(format) {
  try {
    const reply = await post(format);
    const blob = await reply.blob();
    const link = document.createElement("a");
    const stem = (chosen.name || "pasted").replace(/\.[^.]*$/, "");
    link.href = URL.createObjectURL(blob);
    link.download = `${stem}.${format === "txt" ? "txt" : "xml"}`;
    link.click();
  } catch (error) {
    status(error.message, true);
  }
}

$("file").addEventListener("change", (e) => choose(e.target.files[0]));
$("read").addEventListener("click", read);
$("copy").addEventListener("click", async () => {
  await navigator.clipboard.writeText(lastText);
  status("text copied");
});
document.querySelectorAll("[data-format]").forEach((b) => b.addEventListener("click", () => download(b.dataset.format)));
const drop = $("drop");
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); } });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); choose(e.dataTransfer.files[0]); });
document.addEventListener("paste", (e) => {
  const item = [...e.clipboardData.items].find((i) => i.kind === "file");
  if (item) choose(item.getAsFile());
});
