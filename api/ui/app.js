// dermq viewer: a single page over the dermq HTTP API, same origin, no dependencies.
// Every API call goes through `api()`, which adds the bearer token from sessionStorage.
"use strict";

const TOKEN_KEY = "dermq.token";
const USER_KEY = "dermq.user";
const EXPIRY_KEY = "dermq.expiresAt";
const BATCHES_KEY = "dermq.batches";
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "expired"]);
const TOP_N = 5;
const POLL_MS = 500;

const INDICATORS = {
  hasCondition: "Skin condition present",
  malignancy: "Malignancy",
  pigmentedLesion: "Pigmented lesion",
  urgentReferral: "Urgent referral (within 48 h)",
  highPriorityReferral: "High-priority referral (within 15 days)",
};
const INTENSITY = ["none", "low", "moderate", "high"];

// ---------- small DOM helpers (text is always set as text: report fields never become markup) ----------

const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

const pct = (value, digits = 1) => (value === null || value === undefined ? "—" : `${Number(value).toFixed(digits)} %`);
const dataUrl = (attachment) => `data:${attachment.contentType || "image/jpeg"};base64,${attachment.data}`;
const shortId = (id) => (id ? id.slice(0, 8) : "");
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

function notice(message, kind = "error") {
  const box = $("#notice");
  box.textContent = message;
  box.className = `notice ${kind}`;
  box.hidden = !message;
}

// ---------- the API ----------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function errorMessage(status, body) {
  // dermq answers every error as {"detail": [{loc, msg, type}]} (FastAPI's shape).
  const detail = body && body.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      const where = (d.loc || []).filter((part) => part !== "body").join(" › ");
      return where ? `${where}: ${d.msg}` : d.msg;
    }).join("\n");
  }
  if (typeof detail === "string") return detail;
  return `HTTP ${status}`;
}

async function api(path, { method = "GET", json, form, headers = {} } = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = new URLSearchParams(form);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (response.status === 401 && path !== "/login") {
    signOut("Your session has ended; please sign in again.");
  }
  if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, body));
  return { status: response.status, body, headers: response.headers };
}

// A job to its end: GET /jobs/{id} until terminal, then its result.
async function followJob(id, onProgress) {
  for (;;) {
    const { body: job } = await api(`/jobs/${encodeURIComponent(id)}`);
    onProgress(job);
    if (job.status === "succeeded") return (await api(`/jobs/${encodeURIComponent(id)}/result`)).body;
    if (TERMINAL.has(job.status)) throw new ApiError(409, `The job ${job.status}${job.error ? `: ${job.error}` : ""}.`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// An analysis request: the report at once (200), or a job (202) followed until it has one.
async function analyse(path, body, { async = false, progressBox }) {
  const headers = async ? { Prefer: "respond-async" } : {};
  progressBox.hidden = false;
  progressBox.replaceChildren(progressView({ status: "uploading", progress: null }));
  try {
    const response = await api(path, { method: "POST", json: body, headers });
    if (response.status !== 202) return response.body;
    return await followJob(response.body.id, (job) => progressBox.replaceChildren(progressView(job)));
  } finally {
    progressBox.hidden = true;
  }
}

function progressFraction(job) {
  if (job.status === "succeeded") return 1;
  const p = job.progress;
  if (!p || !p.total) return null;
  return Math.min(1, p.done / p.total);
}

function progressView(job) {
  const fraction = progressFraction(job);
  const stage = job.progress && job.progress.stage ? ` · ${job.progress.stage}` : "";
  const bar = el("progress", { max: "1", "aria-label": "Job progress" });
  if (fraction !== null) bar.value = fraction;
  return el("div", { class: "progress-line" },
    el("span", { class: `badge status-${job.status}`, text: job.status }),
    bar,
    el("span", { class: "muted small", text: `${job.id ? `job ${shortId(job.id)}` : ""}${stage}` }));
}

// ---------- session ----------

function signedIn() {
  const expires = Number(sessionStorage.getItem(EXPIRY_KEY) || 0);
  return Boolean(sessionStorage.getItem(TOKEN_KEY)) && (!expires || Date.now() < expires);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  sessionStorage.removeItem(EXPIRY_KEY);
  stopJobsPolling();
  $("#nav").hidden = true;
  showView("login");
  if (message) notice(message, "info");
}

async function onLogin(event) {
  event.preventDefault();
  const error = $("#login-error");
  error.hidden = true;
  const username = $("#username").value.trim();
  try {
    const { body } = await api("/login", { method: "POST", form: { username, password: $("#password").value } });
    sessionStorage.setItem(TOKEN_KEY, body.access_token);
    sessionStorage.setItem(USER_KEY, username);
    sessionStorage.setItem(EXPIRY_KEY, String(Date.now() + body.expires_in_minutes * 60000));
    $("#password").value = "";
    await enter();
  } catch (err) {
    error.textContent = err.status === 401 ? "Wrong username or password." : err.message;
    error.hidden = false;
  }
}

async function enter() {
  notice("");
  $("#nav").hidden = false;
  $("#who").textContent = `(${sessionStorage.getItem(USER_KEY) || ""})`;
  showView("diagnosis");
  try {
    await loadSeverityOptions();
  } catch (err) {
    if (err.status !== 401) notice(`Could not load the scoring systems: ${err.message}`);
  }
}

// ---------- views ----------

let currentView = "login";

function showView(name) {
  currentView = name;
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${name}`;
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (name === "jobs") startJobsPolling();
  else stopJobsPolling();
}

// ---------- images chosen by the person ----------

// The decoded bytes decide the format server-side; a declared type must agree, so it is read from them.
function sniffType(b64) {
  const head = atob(b64.slice(0, 16));
  if (head.startsWith("\xff\xd8\xff")) return "image/jpeg";
  if (head.startsWith("\x89PNG")) return "image/png";
  if (head.startsWith("RIFF") && head.slice(8, 12) === "WEBP") return "image/webp";
  return null;
}

function readImage(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onerror = () => reject(new Error(`Could not read ${file.name}`));
    reader.onload = () => {
      const data = String(reader.result).split(",", 2)[1] || "";
      resolve({ name: file.name, url: URL.createObjectURL(file), data, contentType: sniffType(data) || file.type || null });
    };
    reader.readAsDataURL(file);
  });
}

function attachmentOf(image) {
  const att = { data: image.data, title: image.name };
  if (image.contentType) att.contentType = image.contentType;
  return { contentAttachment: att };
}

function renderThumbs(list, images, onRemove) {
  list.replaceChildren(...images.map((image, i) => el("li", {},
    el("img", { src: image.url, alt: image.name }),
    el("span", { class: "small", text: image.name }),
    el("button", { type: "button", class: "link", "aria-label": `Remove ${image.name}`, text: "Remove", onclick: () => onRemove(i) }))));
}

// A drop zone plus file inputs feeding one list of images (`single`: the last one replaces the rest).
function imagePicker({ zone, inputs, list, single, onChange }) {
  let images = [];
  const update = () => {
    renderThumbs(list, images, (i) => {
      URL.revokeObjectURL(images[i].url);
      images.splice(i, 1);
      update();
    });
    onChange(images);
  };
  const add = async (files) => {
    const picked = [...files].filter((f) => f.type.startsWith("image/") || /\.(jpe?g|png|webp)$/i.test(f.name));
    if (!picked.length) return;
    const read = await Promise.all(picked.map(readImage));
    if (single) {
      images.forEach((image) => URL.revokeObjectURL(image.url));
      images = read.slice(-1);
    } else {
      images = images.concat(read);
    }
    update();
  };
  for (const input of inputs) {
    input.addEventListener("change", () => {
      add(input.files);
      input.value = "";
    });
  }
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    add(e.dataTransfer.files);
  });
  return { get: () => images };
}

// ---------- image with an overlay (heat map, mask) and optional detection boxes ----------

// `base` is the person's own image when this browser still has it; otherwise the overlay (already
// blended over the image by dermq) is shown on its own.
function overlayStage({ base, overlays, initial, label, boxes, size }) {
  const keys = Object.keys(overlays);
  const stage = el("div", { class: "stage" });
  const baseImg = el("img", { class: "base", alt: label, src: base || overlays[initial || keys[0]] });
  const overlayImg = el("img", { class: "overlay", alt: "", "aria-hidden": "true" });
  stage.append(baseImg);
  if (base) stage.append(overlayImg);

  if (boxes && boxes.length) {
    const layer = svg("svg", { class: "boxes", viewBox: `0 0 ${size.width} ${size.height}`, preserveAspectRatio: "none", role: "img",
      "aria-label": `${boxes.length} detection${boxes.length === 1 ? "" : "s"}` });
    for (const d of boxes) {
      const { x1, y1, x2, y2 } = d.box;
      layer.append(svg("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1, class: "box" }));
      const tag = svg("text", { x: x1 + 4, y: Math.max(y1 - 6, 16), class: "box-label" });
      tag.textContent = `${(d.code && d.code.text) || "finding"} ${Math.round(d.confidence)} %`;
      layer.append(tag);
    }
    stage.append(layer);
  }

  const select = el("select", { "aria-label": `${label}: overlay` },
    ...keys.map((key) => el("option", { value: key, text: overlays[key].label })));
  const show = el("input", { type: "checkbox", checked: true });
  const opacity = el("input", { type: "range", min: "0", max: "100", value: "60", "aria-label": "Overlay opacity" });
  const apply = () => {
    const chosen = overlays[select.value];
    if (base) {
      overlayImg.src = chosen.src;
      overlayImg.hidden = !show.checked;
      overlayImg.style.opacity = String(Number(opacity.value) / 100);
    } else {
      baseImg.src = chosen.src;
    }
  };
  select.value = initial || keys[0];
  select.addEventListener("change", apply);
  show.addEventListener("change", apply);
  opacity.addEventListener("input", apply);
  apply();

  const controls = el("div", { class: "overlay-controls" },
    el("label", {}, el("span", { class: "visually-hidden", text: "Overlay" }), select),
    base ? el("label", { class: "inline" }, show, " Show overlay") : null,
    base ? el("label", { class: "inline" }, "Opacity ", opacity) : null);
  return el("figure", { class: "figure" }, stage, keys.length ? controls : null);
}

// ---------- image quality (mediaValidity) ----------

function qualityView(validity) {
  if (!validity) return null;
  const q = validity.quality || {};
  const metrics = Object.entries(q.metrics || {});
  const failing = metrics.filter(([, m]) => !m.acceptable);
  const domain = validity.domain || {};
  const modality = validity.modality || {};
  const domainConf = domain.additionalData && domain.additionalData.aiConfidence;
  return el("section", { class: "quality", "aria-label": "Image quality" },
    el("h4", {}, "Image quality ",
      el("span", { class: `badge ${validity.isValid ? "ok" : "bad"}`, "data-testid": "quality-verdict",
        text: validity.isValid ? "usable" : "not usable" })),
    el("p", {}, `Score ${q.score === undefined ? "—" : Math.round(q.score)} / 100 (${q.interpretation || "—"}). `,
      `${domain.isDermatological ? "Skin image" : "Not recognised as a skin image"}`,
      domainConf ? ` (${pct(domainConf.value, 0)})` : "", `; modality ${modality.value || "—"}.`),
    failing.length
      ? el("ul", { class: "hints" }, ...failing.map(([name, m]) => el("li", {}, el("strong", { text: `${name}: ` }), m.hint || "not acceptable")))
      : el("p", { class: "muted small", text: "Every quality check passed." }),
    el("details", {}, el("summary", { text: "All checks" }),
      el("table", { class: "compact" },
        el("thead", {}, el("tr", {}, el("th", { text: "Check" }), el("th", { text: "Value" }), el("th", { text: "Verdict" }))),
        el("tbody", {}, ...metrics.map(([name, m]) => el("tr", {},
          el("td", { text: name }), el("td", { text: String(m.value) }), el("td", { text: m.acceptable ? "ok" : (m.hint || "not acceptable") })))))));
}

function warningsView(warnings) {
  if (!warnings || !warnings.length) return null;
  return el("div", { class: "warnings", role: "note", "aria-label": "Warnings" },
    el("strong", { text: "Warnings" }), el("ul", {}, ...warnings.map((w) => el("li", { text: w }))));
}

// ---------- diagnosis report ----------

const conditionName = (c) => c.code.text || (c.code.coding && c.code.coding[0] && c.code.coding[0].display) || "—";
const conditionCode = (c) => {
  const coding = (c.code.coding || [])[0];
  return coding ? `ICD-11 ${coding.code} · ${coding.display}` : "";
};

function conditionsList(conclusion, n = TOP_N) {
  return el("ol", { class: "conditions" }, ...conclusion.slice(0, n).map((c) => {
    const bar = el("span", { class: "bar-fill" });
    bar.style.width = `${Math.max(0, Math.min(100, c.probability))}%`;
    return el("li", {},
      el("div", { class: "row-between" }, el("span", { class: "condition-name", text: conditionName(c) }),
        el("span", { class: "probability", text: pct(c.probability) })),
      el("span", { class: "bar", "aria-hidden": "true" }, bar),
      el("span", { class: "muted small", text: conditionCode(c) }));
  }));
}

function indicatorsView(indicators) {
  if (!indicators) return null;
  return el("table", { class: "compact indicators" },
    el("tbody", {}, ...Object.entries(INDICATORS).filter(([key]) => key in indicators).map(([key, label]) =>
      el("tr", {}, el("th", { scope: "row", text: label }), el("td", { text: pct(indicators[key]) })))));
}

function modelView(report) {
  const models = ((report.device && report.device.models) || []).filter((m) => m.task === "classification");
  const perf = report.performanceIndicator || {};
  return el("div", { class: "model" },
    ...models.map((m) => el("p", {}, el("strong", { text: `${m.name} ${m.version}` }), " ",
      el("span", { class: `badge ${m.trained ? "ok" : "bad"}`, text: m.trained ? "trained" : "untrained" }),
      el("span", { class: "muted small", text: ` ${m.architecture || ""} on ${m.device || "?"}` }))),
    el("p", { class: "small" },
      `Validation sensitivity ${perf.sensitivity === null || perf.sensitivity === undefined ? "not measured" : pct(perf.sensitivity)}, `,
      `specificity ${perf.specificity === null || perf.specificity === undefined ? "not measured" : pct(perf.specificity)} `,
      "for the top condition; ",
      `uncertainty (entropy) ${pct(perf.entropy)}.`));
}

function renderDiagnosis(report, images) {
  const target = $("#report");
  const top = (report.conclusion || [])[0];
  const analyses = report.imagingAnalysis || [];
  const summary = el("section", { class: "card summary", "aria-labelledby": "summary-title" },
    el("h3", { id: "summary-title", text: "Report" }),
    top
      ? el("p", { class: "top" }, el("span", { class: "muted", text: "Most likely: " }),
        el("strong", { class: "top-condition", "data-testid": "top-condition", text: conditionName(top) }),
        el("span", { class: "probability", text: ` ${pct(top.probability)}` }))
      : el("p", { class: "top none", "data-testid": "top-condition", text: "No conclusion: no image passed the quality checks." }),
    warningsView(report.warnings),
    top ? conditionsList(report.conclusion) : null,
    el("div", { class: "grid2" },
      el("div", {}, el("h4", { text: "Clinical indicators" }), indicatorsView(report.clinicalIndicator) || el("p", { class: "muted", text: "—" })),
      el("div", {}, el("h4", { text: "Model" }), modelView(report))),
    el("p", { class: "muted small", text: `Report ${report.identifier ? report.identifier.value : ""} · ${when(report.issued)} · ${Number(report.analysisDuration || 0).toFixed(2)} s of analysis` }));

  const perImage = analyses.map((analysis, i) => {
    const image = images[i];
    const overlays = {};
    for (const c of (analysis.conclusion || []).slice(0, TOP_N)) {
      const heat = c.explainability && c.explainability.heatMap;
      if (heat && heat.data) overlays[c.code.coding[0].code] = { label: `Heat map: ${conditionName(c)} (${pct(c.probability)})`, src: dataUrl(heat) };
    }
    const title = (image && image.name) || `Image ${i + 1}`;
    const figure = Object.keys(overlays).length
      ? overlayStage({ base: image && image.url, overlays, label: title })
      : (image ? el("figure", { class: "figure" }, el("img", { class: "base", src: image.url, alt: title })) : null);
    if (figure) figure.classList.add("heatmap-figure");
    const overlayImg = figure && $(".overlay", figure);
    if (overlayImg) overlayImg.classList.add("heatmap-overlay");
    return el("section", { class: "card image-report", "aria-label": title },
      el("h3", { text: analyses.length > 1 ? `Image ${i + 1}: ${title}` : title }),
      el("div", { class: "grid2" },
        figure,
        el("div", {},
          qualityView(analysis.mediaValidity),
          analysis.conclusion && analysis.conclusion.length
            ? el("div", {}, el("h4", { text: "This image" }), conditionsList(analysis.conclusion, 3)) : null)));
  });
  target.replaceChildren(summary, ...perImage);
}

let diagnosisPicker;

async function onDiagnosis(event) {
  event.preventDefault();
  const images = diagnosisPicker.get();
  if (!images.length) return;
  const button = $("#diagnosis-submit");
  button.disabled = true;
  notice("");
  try {
    const report = await analyse("/diagnosis-support", { payload: images.map(attachmentOf) },
      { async: $("#diagnosis-async").checked, progressBox: $("#diagnosis-progress") });
    renderDiagnosis(report, images);
    $("#report").scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (err) {
    if (err.status !== 401) notice(err.message);
  } finally {
    button.disabled = !diagnosisPicker.get().length;
  }
}

// ---------- severity ----------

const severity = { systems: [], sites: [], conditions: new Map(), loaded: false };

async function loadSeverityOptions() {
  const [systems, sites, conditions] = await Promise.all([api("/questionnaires"), api("/body-sites"), api("/conditions")]);
  // This form scores one imaged site: the systems with a local (automatic) mode.
  severity.systems = systems.body.filter((s) => (Array.isArray(s.mode) ? s.mode : [s.mode]).includes("local"));
  severity.sites = sites.body;
  severity.conditions = new Map(conditions.body.map((c) => [c.code, c]));
  severity.loaded = true;
  const select = $("#severity-system");
  select.replaceChildren(...severity.systems.map((s) => el("option", { value: s.code, text: `${s.title} (${s.code})` })));
  onSystemChange();
}

const siteName = (site) => (site.name && (site.name.en_GB || Object.values(site.name)[0])) || site.code;
const currentSystem = () => severity.systems.find((s) => s.code === $("#severity-system").value);

function inputFor(item) {
  const id = `item-${item.code}`;
  let control;
  if (item.labels && item.type === "ordinal" && item.labels.length === item.maximum - item.minimum + 1) {
    control = el("select", { id, name: item.code, required: !item.optional },
      ...item.labels.map((text, i) => el("option", { value: String(item.minimum + i), text: `${item.minimum + i}: ${text}` })));
  } else {
    control = el("input", { id, name: item.code, type: "number", inputmode: "decimal", required: !item.optional,
      min: String(item.minimum), max: String(item.maximum), step: item.integer ? "1" : "any" });
  }
  const unit = item.type === "percent" ? " (%)" : "";
  return el("div", { class: "field" },
    el("label", { for: id, text: `${item.text}${unit}${item.optional ? " (optional)" : ""}` }),
    control,
    el("p", { class: "muted small", text: `${item.minimum}–${item.maximum}. ${item.description || ""}` }));
}

function onSystemChange() {
  const system = currentSystem();
  if (!system) return;
  $("#severity-system-help").textContent = system.description || "";
  const allowed = system.allowedBodySites;
  const sites = severity.sites.filter((s) => !allowed || allowed.includes(s.code));
  const siteSelect = $("#severity-site");
  const previous = siteSelect.value;
  siteSelect.replaceChildren(...sites.map((s) => el("option", { value: s.code, text: siteName(s) })));
  if (sites.some((s) => s.code === previous)) siteSelect.value = previous;

  const condSelect = $("#severity-condition");
  const condText = $("#severity-condition-text");
  const known = (system.pathologies || []).map((code) => severity.conditions.get(code)).filter(Boolean);
  condSelect.replaceChildren(...known.map((c) => el("option", { value: c.code, text: `${c.display} (${c.code})` })));
  condSelect.hidden = !known.length;
  // Systems that score any finding take the clinician's own words when no catalogue condition fits.
  condText.hidden = known.length > 0;
  condText.required = !known.length;
  condText.setAttribute("aria-label", "Condition");

  const clinical = system.items.filter((item) => item.source !== "ai");
  $("#severity-fields").replaceChildren(...clinical.map(inputFor));
  $("#severity-inputs").hidden = !clinical.length;
}

let severityPicker;

function severityBody(system, image) {
  const item = {};
  for (const input of $("#severity-fields").querySelectorAll("input, select")) {
    if (input.value !== "") item[input.name] = Number(input.value);
  }
  let conclusion;
  if (!$("#severity-condition").hidden) {
    const c = severity.conditions.get($("#severity-condition").value);
    conclusion = { text: c.display, coding: [{ code: c.code, display: c.display, system: c.system, systemDisplay: "ICD-11", version: c.version }] };
  } else {
    conclusion = { text: $("#severity-condition-text").value.trim() };
  }
  return {
    payload: attachmentOf(image),
    bodySite: $("#severity-site").value,
    knownCondition: { conclusion },
    scoringSystem: { [system.code]: { questionnaireResponse: { item } } },
  };
}

function formatScore(value, decimals) {
  if (value === null || value === undefined) return "—";
  return typeof decimals === "number" ? Number(value).toFixed(decimals) : String(value);
}

function renderSeverity(report, image) {
  const target = $("#severity-result");
  const [code, entry] = Object.entries(report.patientEvolution || {}).find(([, v]) => v) || [];
  if (!entry) {
    target.replaceChildren(el("p", { class: "card", text: "The report holds no score." }));
    return;
  }
  const system = severity.systems.find((s) => s.code === code) || {};
  const score = entry.score || {};
  const interp = score.interpretation || {};
  const items = Object.entries(entry.item || {});
  const media = entry.media || {};
  const attachments = (media.attachment) || {};
  const overlays = {};
  // Segmentation first: it is the coloured overlay meant to be read over the image.
  for (const key of ["segmentation", "annotation", "maskBinary", "maskRaw", ...Object.keys(attachments)]) {
    const att = attachments[key];
    if (att && att.data && !overlays[key]) overlays[key] = { label: att.title || key, src: dataUrl(att) };
  }
  const first = Object.values(attachments).find((a) => a && a.width);
  const detections = media.detection || [];
  const figure = Object.keys(overlays).length
    ? overlayStage({ base: image && image.url, overlays, label: "Scored image", boxes: detections,
      size: first ? { width: first.width, height: first.height } : null })
    : (image ? el("figure", { class: "figure" }, el("img", { class: "base", src: image.url, alt: "Scored image" })) : null);
  const condition = report.knownCondition && report.knownCondition.conclusion;
  const contribution = score.additionalData && score.additionalData.globalScoreContribution;

  target.replaceChildren(el("section", { class: "card summary", "aria-labelledby": "severity-result-title" },
    el("h3", { id: "severity-result-title", text: `${system.title || code}` }),
    el("p", { class: "top" },
      el("span", { class: "muted", text: "Score " }),
      el("strong", { class: "severity-score", "data-testid": "severity-score", "data-value": String(score.value), text: formatScore(score.value, system.decimals) }),
      " ",
      el("span", { class: `badge intensity-${interp.intensity}`, "data-testid": "severity-category", text: interp.category || "—" }),
      el("span", { class: "muted small", text: ` intensity ${INTENSITY[interp.intensity] || interp.intensity}` })),
    contribution ? el("p", { class: "small", text: `Contribution to the whole-body score: ${contribution.value}` }) : null,
    condition ? el("p", { class: "small", text: `Condition: ${condition.text}` }) : null,
    warningsView(report.warnings),
    el("div", { class: "grid2" },
      figure,
      el("div", {},
        el("h4", { text: "Items" }),
        el("table", { class: "compact items" },
          el("thead", {}, el("tr", {}, el("th", { text: "Item" }), el("th", { text: "Value" }), el("th", { text: "Source" }))),
          el("tbody", {}, ...items.map(([key, item]) => {
            const conf = item.additionalData && item.additionalData.aiConfidence;
            return el("tr", {}, el("td", { text: (item.code && item.code.text) || key }), el("td", { text: String(item.value) }),
              el("td", { class: "small", text: conf ? `AI, confidence ${pct(conf.value, 0)}` : "clinician" }));
          }))),
        detections.length ? el("p", { class: "small", text: `${detections.length} detection${detections.length === 1 ? "" : "s"} drawn over the image.` }) : null,
        qualityView(report.mediaValidity))),
    el("p", { class: "muted small", text: `Report ${report.identifier ? report.identifier.value : ""} · ${when(report.issued)}` })));
}

async function onSeverity(event) {
  event.preventDefault();
  const system = currentSystem();
  const image = severityPicker.get()[0];
  if (!system || !image) return;
  const button = $("#severity-submit");
  button.disabled = true;
  notice("");
  try {
    const report = await analyse("/severity-assessment/automatic/local", severityBody(system, image),
      { progressBox: $("#severity-progress") });
    renderSeverity(report, image);
    $("#severity-result").scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (err) {
    if (err.status !== 401) notice(err.message);
  } finally {
    button.disabled = !severityPicker.get().length;
  }
}

// ---------- jobs and batches ----------

let jobsTimer = null;

function stopJobsPolling() {
  clearTimeout(jobsTimer);
  jobsTimer = null;
}

function startJobsPolling() {
  stopJobsPolling();
  const tick = async () => {
    let busy = false;
    try {
      busy = await refreshJobs();
    } catch (err) {
      if (err.status !== 401) notice(`Could not list jobs: ${err.message}`);
    }
    // Quick while something is moving, relaxed once everything has finished.
    if (currentView === "jobs" && signedIn()) jobsTimer = setTimeout(tick, busy ? 1000 : 5000);
  };
  tick();
}

function knownBatches() {
  try {
    return JSON.parse(sessionStorage.getItem(BATCHES_KEY) || "[]");
  } catch {
    return [];
  }
}

function rememberBatch(id) {
  const ids = knownBatches().filter((b) => b !== id);
  ids.unshift(id);
  sessionStorage.setItem(BATCHES_KEY, JSON.stringify(ids.slice(0, 20)));
}

async function viewResult(job) {
  try {
    const { body } = await api(`/jobs/${encodeURIComponent(job.id)}/result`);
    if (job.kind.startsWith("diagnosis")) {
      renderDiagnosis(body, []);
      showView("diagnosis");
      $("#report").scrollIntoView({ block: "start" });
    } else {
      renderSeverity(body, null);
      showView("severity");
      $("#severity-result").scrollIntoView({ block: "start" });
    }
  } catch (err) {
    if (err.status !== 401) notice(err.message);
  }
}

async function cancelJob(job) {
  try {
    await api(`/jobs/${encodeURIComponent(job.id)}`, { method: "DELETE" });
    await refreshJobs();
  } catch (err) {
    if (err.status !== 401) notice(err.message);
  }
}

function jobRow(job) {
  const actions = [];
  if (job.status === "succeeded") actions.push(el("button", { type: "button", class: "link", text: "View report", onclick: () => viewResult(job) }));
  if (!TERMINAL.has(job.status)) actions.push(el("button", { type: "button", class: "link", text: "Cancel", onclick: () => cancelJob(job) }));
  return el("tr", { "data-job": job.id, "data-status": job.status },
    el("td", {}, el("code", { title: job.id, text: shortId(job.id) })),
    el("td", { text: job.kind }),
    el("td", {}, progressView(job)),
    el("td", { class: "small", text: when(job.createdAt) }),
    el("td", { class: "small", text: job.reference || (job.batchId ? `batch ${shortId(job.batchId)}` : "—") }),
    el("td", {}, ...actions, job.error ? el("span", { class: "error small", text: job.error }) : null));
}

function batchView(batch) {
  const finished = ["succeeded", "failed", "cancelled", "expired"].reduce((n, s) => n + (batch.counts[s] || 0), 0);
  const bar = el("progress", { max: String(batch.total || 1), "aria-label": `Batch ${shortId(batch.id)} progress` });
  bar.value = finished;
  const counts = Object.entries(batch.counts).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(", ");
  return el("div", { class: "batch", "data-batch": batch.id, "data-done": String(batch.done) },
    el("div", { class: "row-between" },
      el("span", {}, el("code", { title: batch.id, text: shortId(batch.id) }), ` · ${batch.total} job${batch.total === 1 ? "" : "s"}`),
      el("span", { class: `badge ${batch.done ? "ok" : "status-running"}`, text: batch.done ? "done" : "running" })),
    bar,
    el("p", { class: "small muted", text: `${finished} of ${batch.total} finished${counts ? ` (${counts})` : ""}` }));
}

// Returns whether anything is still queued or running.
async function refreshJobs() {
  const { body } = await api("/jobs?limit=50");
  const jobs = body.items;
  const table = el("table", { class: "jobs" },
    el("thead", {}, el("tr", {}, ...["Job", "Kind", "Status", "Created", "Reference", ""].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...jobs.map(jobRow)));
  $("#jobs").replaceChildren(jobs.length ? table : el("p", { class: "muted", text: "No jobs yet." }));
  $("#jobs-updated").textContent = `${body.total} job${body.total === 1 ? "" : "s"} · updated ${new Date().toLocaleTimeString()}`;

  const ids = [...new Set([...knownBatches(), ...jobs.map((j) => j.batchId).filter(Boolean)])].slice(0, 10);
  const batches = (await Promise.all(ids.map((id) => api(`/batches/${encodeURIComponent(id)}`).then((r) => r.body, () => null)))).filter(Boolean);
  $("#batches").replaceChildren(...(batches.length ? batches.map(batchView) : [el("p", { class: "muted", text: "No batches yet." })]));
  return jobs.some((j) => !TERMINAL.has(j.status)) || batches.some((b) => !b.done);
}

let batchFiles = [];

async function onBatch(event) {
  event.preventDefault();
  if (!batchFiles.length) return;
  const button = $("#batch-submit");
  button.disabled = true;
  notice("");
  try {
    const images = await Promise.all(batchFiles.map(readImage));
    const items = images.map((image) => ({ kind: "diagnosis-support", body: { payload: [attachmentOf(image)] }, reference: image.name }));
    images.forEach((image) => URL.revokeObjectURL(image.url));
    const { body } = await api("/batches", { method: "POST", json: { items } });
    rememberBatch(body.id);
    if (body.rejected && body.rejected.length) {
      notice(body.rejected.map((r) => `${r.reference || `item ${r.index}`}: ${errorMessage(r.status, r)}`).join("\n"));
    }
    batchFiles = [];
    $("#batch-count").textContent = "No images chosen";
    startJobsPolling();
  } catch (err) {
    if (err.status !== 401) notice(err.message);
  } finally {
    button.disabled = !batchFiles.length;
  }
}

// ---------- start ----------

function init() {
  $("#login-form").addEventListener("submit", onLogin);
  $("#logout").addEventListener("click", () => signOut("Signed out."));
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));

  diagnosisPicker = imagePicker({
    zone: $("#diagnosis-drop"), inputs: [$("#diagnosis-files"), $("#diagnosis-camera")], list: $("#diagnosis-thumbs"),
    single: false, onChange: (images) => { $("#diagnosis-submit").disabled = !images.length; },
  });
  severityPicker = imagePicker({
    zone: $("#severity-drop"), inputs: [$("#severity-file"), $("#severity-camera")], list: $("#severity-thumbs"),
    single: true, onChange: (images) => { $("#severity-submit").disabled = !images.length; },
  });
  $("#diagnosis-form").addEventListener("submit", onDiagnosis);
  $("#severity-form").addEventListener("submit", onSeverity);
  $("#severity-system").addEventListener("change", onSystemChange);
  $("#batch-files").addEventListener("change", (e) => {
    batchFiles = [...e.target.files];
    $("#batch-count").textContent = batchFiles.length ? `${batchFiles.length} image${batchFiles.length === 1 ? "" : "s"} chosen` : "No images chosen";
    $("#batch-submit").disabled = !batchFiles.length;
  });
  $("#batch-form").addEventListener("submit", onBatch);

  if (signedIn()) enter();
  else signOut();
}

document.addEventListener("DOMContentLoaded", init);
