// The drawing page's second mode: write a whole number on a wide pad; POST /v1/read
// reads it, and each digit's box and reading are drawn over the writing. Plain JS,
// no build step. Wrapped in a function: app.js (the one-digit mode) shares the page's
// global scope and names such as `pad`.
"use strict";

(() => {
  const body = document.body;
  const modeDigit = document.getElementById("mode-digit");
  const modeNumber = document.getElementById("mode-number");
  const pad = document.getElementById("numpad");
  const ctx = pad.getContext("2d");
  const boxes = document.getElementById("numboxes");
  const boxCtx = boxes.getContext("2d");
  const result = document.getElementById("num-result");
  const numberEl = document.getElementById("number");
  const confidenceEl = document.getElementById("num-confidence");
  const digitsEl = document.getElementById("num-digits");
  const errorEl = document.getElementById("num-error");

  const PEN_WIDTH = 16; // px on the 240 px tall pad: a digit ~180 px tall, MNIST's stroke
  const PAUSE_MS = 400; // read once the pen has rested this long after a stroke
  const BOX_COLOUR = "#1f6feb";

  let drawing = false;
  let hasInk = false;
  let strokes = 0; // completed strokes; the result says which stroke it belongs to
  let timer = null;
  let inFlight = false;
  let queued = false;
  let generation = 0; // bumped by Clear: a late reply for an older drawing is dropped
  let controller = null;
  // Where the image that was read lies on the pad: pad = image * scale + offset.
  let frame = { scale: 1, dx: 0, dy: 0 };

  // -- the two modes ---------------------------------------------------------------------------
  function setMode(mode) {
    body.dataset.mode = mode;
    modeDigit.setAttribute("aria-pressed", String(mode === "digit"));
    modeNumber.setAttribute("aria-pressed", String(mode === "number"));
    history.replaceState(null, "", mode === "number" ? "#number" : location.pathname);
  }
  modeDigit.addEventListener("click", () => setMode("digit"));
  modeNumber.addEventListener("click", () => setMode("number"));

  // -- the pad ---------------------------------------------------------------------------------
  function clearBoxes() {
    boxCtx.clearRect(0, 0, boxes.width, boxes.height);
  }

  function clearPad() {
    generation += 1;
    queued = false;
    if (timer) { clearTimeout(timer); timer = null; }
    if (controller) controller.abort();
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    clearBoxes();
    frame = { scale: 1, dx: 0, dy: 0 };
    hasInk = false;
    strokes = 0;
    result.dataset.forStroke = "0";
    numberEl.textContent = "?";
    confidenceEl.textContent = "write a number, digits side by side";
    digitsEl.replaceChildren();
    errorEl.textContent = "";
  }

  function point(ev) {
    const r = pad.getBoundingClientRect();
    return [(ev.clientX - r.left) * (pad.width / r.width),
      (ev.clientY - r.top) * (pad.height / r.height)];
  }

  pad.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    pad.setPointerCapture(ev.pointerId);
    if (timer) { clearTimeout(timer); timer = null; }
    if (frame.scale !== 1 || frame.dx !== 0 || frame.dy !== 0) clearPad(); // over an upload
    drawing = true;
    clearBoxes(); // the old boxes no longer match the writing
    const [x, y] = point(ev);
    ctx.strokeStyle = "#111";
    ctx.fillStyle = "#111";
    ctx.lineWidth = PEN_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.arc(x, y, PEN_WIDTH / 2, 0, 2 * Math.PI); // a dot even without movement
    ctx.fill();
    ctx.beginPath();
    ctx.moveTo(x, y);
    hasInk = true;
  });

  pad.addEventListener("pointermove", (ev) => {
    if (!drawing) return;
    ev.preventDefault();
    const [x, y] = point(ev);
    ctx.lineTo(x, y);
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(x, y);
  });

  function endStroke() {
    if (!drawing) return;
    drawing = false;
    strokes += 1;
    timer = setTimeout(() => { timer = null; readPad(); }, PAUSE_MS);
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  // -- reading ---------------------------------------------------------------------------------
  function readPad() {
    if (!hasInk) return;
    if (timer) { clearTimeout(timer); timer = null; }
    if (inFlight) { queued = true; return; } // one request at a time; the latest drawing wins
    const forStroke = strokes;
    const gen = generation;
    inFlight = true; // toBlob is asynchronous too
    pad.toBlob((blob) => {
      if (gen === generation) {
        send(blob, "number.png", forStroke);
      } else {
        inFlight = controller !== null;
        if (queued && !inFlight) { queued = false; readPad(); }
      }
    }, "image/png");
  }

  async function send(blob, name, forStroke) {
    inFlight = true;
    const gen = generation;
    const abort = new AbortController();
    controller = abort;
    try {
      const form = new FormData();
      form.append("file", blob, name);
      const resp = await fetch("/v1/read", { method: "POST", body: form, signal: abort.signal });
      let answer = null;
      try { answer = await resp.json(); } catch (err) { answer = null; } // a proxy's HTML page
      if (gen !== generation) return;
      if (!resp.ok) {
        errorEl.textContent = (answer && answer.error) ||
          `server error ${resp.status}${resp.statusText ? " " + resp.statusText : ""}`;
      } else if (!answer) {
        errorEl.textContent = `unexpected reply from the server (status ${resp.status}, not JSON)`;
      } else {
        errorEl.textContent = "";
        show(answer);
      }
    } catch (err) {
      if (gen === generation) errorEl.textContent = `cannot reach the server: ${err}`;
    } finally {
      if (gen === generation) result.dataset.forStroke = String(forStroke);
      if (controller === abort) {
        controller = null;
        inFlight = false;
        if (queued) { queued = false; readPad(); }
      }
    }
  }

  function percent(p) {
    return `${(100 * p).toFixed(1)}%`;
  }

  function show(r) {
    numberEl.textContent = r.text === null ? "\u2013" : r.text;
    confidenceEl.textContent = r.text === null
      ? (r.reason || "no number found")
      : `${percent(r.confidence)} sure of the whole number`;
    digitsEl.replaceChildren(...r.digits.map((d, i) => {
      const li = document.createElement("li");
      const b = document.createElement("b");
      b.textContent = String(d.digit);
      li.append(`${i + 1}: `, b, ` ${percent(d.confidence)}`);
      return li;
    }));
    drawBoxes(r.digits);
  }

  function drawBoxes(digits) {
    clearBoxes();
    boxCtx.strokeStyle = BOX_COLOUR;
    boxCtx.fillStyle = BOX_COLOUR;
    boxCtx.lineWidth = 3;
    boxCtx.font = "bold 28px system-ui, sans-serif";
    boxCtx.textBaseline = "bottom";
    for (const d of digits) {
      const [x0, y0, x1, y1] = d.box;
      const x = x0 * frame.scale + frame.dx, y = y0 * frame.scale + frame.dy;
      const w = (x1 - x0) * frame.scale, h = (y1 - y0) * frame.scale;
      boxCtx.strokeRect(x, y, w, h);
      // The digit read, above its box; below it when the box touches the top.
      const below = y + h + 30 <= boxes.height ? y + h + 30 : y + 30;
      boxCtx.fillText(String(d.digit), x + 2, y > 30 ? y - 2 : below);
    }
  }

  // -- buttons ---------------------------------------------------------------------------------
  document.getElementById("num-read").addEventListener("click", readPad);
  document.getElementById("num-clear").addEventListener("click", clearPad);

  document.getElementById("num-file").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    clearPad();
    // Show the upload on the pad (scaled to fit); read the original file, whose pixels
    // the boxes are in: `frame` maps them onto the pad.
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => {
      const s = Math.min(pad.width / img.width, pad.height / img.height);
      const w = img.width * s, h = img.height * s;
      frame = { scale: s, dx: (pad.width - w) / 2, dy: (pad.height - h) / 2 };
      ctx.drawImage(img, frame.dx, frame.dy, w, h);
      URL.revokeObjectURL(url);
      send(file, file.name, strokes);
    };
    img.onerror = () => { URL.revokeObjectURL(url); send(file, file.name, strokes); };
    img.src = url;
    ev.target.value = "";
  });

  clearPad();
  setMode(location.hash === "#number" ? "number" : "digit");
})();
