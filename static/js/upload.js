// The upload page: each chosen or dropped image goes to the upload API with its progress
// shown, then its job is followed until the image is classified or has failed.
//
// Each file is one <li> of #upload-list whose data-state is waiting, uploading,
// processing, succeeded, failed (the job failed) or rejected (the upload was refused);
// held while the bucket name is not one the server accepts (the file is kept, not lost).

const MAX_PARALLEL_UPLOADS = 3;
const FOLLOW_FOR_MS = 10 * 60 * 1000;
const MAX_POLL_DELAY_MS = 5000;
const RETRYABLE = new Set([
  "RATE_LIMIT_EXCEEDED", "CONFLICT", "SERVICE_UNAVAILABLE", "AUTHORIZATION_UNAVAILABLE",
  "INTERNAL_ERROR", "NETWORK_ERROR",
]);
const SIGNED_OUT = new Set([
  "NOT_AUTHENTICATED", "AUTHENTICATION_FAILED", "TOKEN_REVOKED", "TOKEN_EXPIRED",
]);
const STATE_TEXT = {
  held: "Held",
  waiting: "Waiting",
  uploading: "Uploading",
  processing: "Processing",
  succeeded: "Classified",
  failed: "Failed",
  rejected: "Refused",
};

const form = document.getElementById("upload-form");
const input = document.getElementById("upload-files");
const zone = document.getElementById("drop-zone");
const bucketField = document.getElementById("upload-bucket");
const list = document.getElementById("upload-list");
const summary = document.getElementById("upload-summary");
const bucketError = document.getElementById("upload-bucket-error");
const heldNotice = document.getElementById("upload-held");
const heldText = document.getElementById("upload-held-text");
const heldSend = document.getElementById("upload-held-send");

const config = {
  uploadUrl: form.dataset.uploadUrl,
  maxBytes: Number(form.dataset.maxBytes),
  maxSize: form.dataset.maxSize,
  loginUrl: form.dataset.loginUrl,
  csrfToken: form.elements.namedItem("csrfmiddlewaretoken").value,
  limitsUrl: form.dataset.limitsUrl,
  messages: JSON.parse(document.getElementById("rejection-messages").textContent),
  // Each label's display name and the rule deciding the verdict, as the server words them.
  labels: JSON.parse(document.getElementById("classifier-labels").textContent),
};

const items = [];
const waiting = [];
const held = [];
let active = 0;

// --- Small helpers ----------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function sizeText(bytes) {
  // Decimal units, as the tiers publish their limits.
  if (bytes >= 1_000_000) return `${(bytes / 1_000_000).toFixed(1).replace(/\.0$/, "")} MB`;
  if (bytes >= 1_000) return `${(bytes / 1_000).toFixed(1).replace(/\.0$/, "")} KB`;
  return `${bytes} bytes`;
}

function durationText(seconds) {
  const minutes = Math.ceil(seconds / 60);
  if (seconds < 60) return `${seconds} s`;
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** Seconds to wait from a Retry-After header (seconds or an HTTP date), or null. */
function retryAfterSeconds(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const moment = Date.parse(value);
  return Number.isNaN(moment) ? null : Math.max(0, Math.ceil((moment - Date.now()) / 1000));
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function labelText(label) {
  return config.labels.names[label] || String(label).replaceAll("_", " ");
}

function percentText(fraction) {
  return `${(Math.max(0, Math.min(1, Number(fraction) || 0)) * 100).toFixed(1)}%`;
}

const SVG = "http://www.w3.org/2000/svg";

function meter(percent, threshold) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", threshold === undefined ? "meter" : "meter threshold-meter");
  svg.setAttribute("viewBox", "0 0 100 10");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const [className, width] of [["track", 100], ["fill", percent]]) {
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("class", className);
    rect.setAttribute("width", width.toFixed(2));
    rect.setAttribute("height", "10");
    svg.append(rect);
  }
  if (threshold !== undefined) {
    const mark = document.createElementNS(SVG, "rect");
    mark.setAttribute("class", "threshold");
    mark.setAttribute("x", threshold.toFixed(2));
    mark.setAttribute("width", "0.8");
    mark.setAttribute("height", "10");
    svg.append(mark);
  }
  return svg;
}

// --- One file ---------------------------------------------------------------------

class UploadItem {
  constructor(file, bucket) {
    this.file = file;
    this.bucket = bucket;
    // The same key for every attempt: a retried upload can never make a second image.
    this.key = newKey();
    this.row = element("li", "upload-item");
    const head = element("div", "upload-head");
    head.append(element("span", "file-name", file.name), element("span", "file-size muted", sizeText(file.size)));
    this.badge = element("span", "badge");
    head.append(this.badge);
    this.progress = element("progress", "upload-progress");
    this.progress.max = 100;
    this.progress.value = 0;
    this.progress.setAttribute("aria-label", `${file.name}: progress`);
    this.status = element("p", "upload-status");
    this.error = element("div", "upload-error");
    this.labels = element("div", "labels");
    this.links = element("p", "upload-links");
    this.row.append(head, this.progress, this.status, this.error, this.labels, this.links);
    list.prepend(this.row);
  }

  setState(state, text) {
    this.state = state;
    this.row.dataset.state = state;
    this.badge.className = `badge ${state}`;
    this.badge.textContent = STATE_TEXT[state];
    if (text !== undefined) this.status.textContent = text;
    if (state === "processing") this.progress.removeAttribute("value"); // indeterminate
    if (state === "succeeded") this.progress.value = 100;
    if (state === "failed" || state === "rejected") this.progress.hidden = true;
    summarize();
  }

  showUploaded(fraction) {
    const percent = Math.round(fraction * 100);
    this.progress.value = percent;
    this.status.textContent = percent < 100 ? `Uploading… ${percent}%` : "Uploaded; checking the file…";
  }

  showRefusal(code, detail, extra) {
    this.row.dataset.code = code;
    this.error.replaceChildren();
    const message = element("p");
    message.append(element("strong", "", config.messages[code] || "The upload was refused."));
    if (extra) message.append(` ${extra}`);
    this.error.append(message);
    if (detail) this.error.append(element("p", "problem-detail", detail));
    const codeLine = element("p", "problem-code muted", "Code: ");
    codeLine.append(element("code", "", code));
    this.error.append(codeLine);
  }

  offerRetry(afterSeconds) {
    const button = element("button", "secondary retry", "Try again");
    button.type = "button";
    if (afterSeconds) {
      button.disabled = true;
      setTimeout(() => { button.disabled = false; }, afterSeconds * 1000);
    }
    button.addEventListener("click", () => {
      this.error.replaceChildren();
      this.links.replaceChildren();
      this.progress.hidden = false;
      this.progress.value = 0;
      delete this.row.dataset.code;
      enqueue(this);
    });
    this.links.append(button);
  }

  // The verdict, the vehicle probability against the rule that decides it, then the
  // vehicle categories: the same words as the image's page.
  showLabels(classification) {
    this.labels.replaceChildren();
    const verdict = element("div", "verdict");
    verdict.dataset.vehicle = classification.is_vehicle ? "yes" : "no";
    const top = element("p", "top-label");
    if (classification.is_vehicle) {
      top.append("A vehicle: ", element("strong", "", labelText(classification.top_label)));
    } else {
      top.append(element("strong", "", "Not a vehicle"));
    }
    const probability = Number(classification.vehicle_probability) || 0;
    const rule = element("p", "vehicle-rule", "Vehicle probability ");
    rule.append(element("strong", "vehicle-probability", percentText(probability)),
      `, ${config.labels.rule}.`);
    const gauge = meter(Math.max(0, Math.min(1, probability)) * 100, config.labels.threshold * 100);
    if (!classification.is_vehicle) gauge.classList.add("below");
    verdict.append(top, rule, gauge);
    const categories = (classification.predictions || []).filter((p) => p.label !== config.labels.not_vehicle);
    if (categories.length) {
      const chart = element("ul", "chart");
      chart.setAttribute("aria-label", `${this.file.name}: vehicle categories`);
      for (const prediction of categories) {
        const confidence = Math.max(0, Math.min(1, Number(prediction.confidence) || 0));
        const row = element("li");
        row.append(
          element("span", "chart-label", labelText(prediction.label)),
          meter(confidence * 100),
          element("span", "chart-value", percentText(confidence)),
        );
        chart.append(row);
      }
      verdict.append(element("h3", "chart-title", "Which vehicle"), chart);
    }
    this.labels.append(verdict);
  }

  linkImage(imageId) {
    this.row.dataset.imageId = imageId;
    const link = element("a", "", "View image");
    link.href = `/images/${imageId}/`;
    this.links.replaceChildren(link);
  }
}

// --- Uploading ----------------------------------------------------------------------

function send(item) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", config.uploadUrl);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", config.csrfToken);
    xhr.setRequestHeader("Idempotency-Key", item.key);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) item.showUploaded(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => resolve({
      status: xhr.status,
      body: parseJson(xhr.responseText),
      retryAfter: retryAfterSeconds(xhr.getResponseHeader("Retry-After")),
    }));
    xhr.addEventListener("error", () => resolve({ status: 0, body: null, retryAfter: null }));
    xhr.addEventListener("timeout", () => resolve({ status: 0, body: null, retryAfter: null }));
    const data = new FormData();
    data.append("file", item.file, item.file.name);
    data.append("bucket", item.bucket);
    xhr.send(data);
  });
}

function refusalCode(answer) {
  if (answer.body && typeof answer.body.code === "string") return answer.body.code;
  if (answer.status === 0) return "NETWORK_ERROR";
  if (answer.status === 413) return "FILE_TOO_LARGE";
  if (answer.status === 429) return "RATE_LIMIT_EXCEEDED";
  if (answer.status === 503) return "SERVICE_UNAVAILABLE";
  return "INTERNAL_ERROR";
}

function refuse(item, answer) {
  const code = refusalCode(answer);
  const detail = answer.body && answer.body.detail;
  let extra = "";
  if (code === "QUOTA_EXCEEDED" && answer.retryAfter !== null) {
    const reset = new Date(Date.now() + answer.retryAfter * 1000);
    const at = reset.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    extra = `Uploads open again at ${at} (in ${durationText(answer.retryAfter)}).`;
  } else if (code === "RATE_LIMIT_EXCEEDED" && answer.retryAfter !== null) {
    extra = `Try again in ${durationText(answer.retryAfter)}.`;
  } else if (code === "NETWORK_ERROR") {
    extra = "The upload did not reach the server; check the connection.";
  } else if (SIGNED_OUT.has(code)) {
    extra = "Sign in again, then upload the file once more.";
  } else if (code === "PERMISSION_DENIED" && /CSRF/.test(detail || "")) {
    extra = "The page is out of date: reload it, then add the file again.";
  }
  item.setState("rejected", "Not uploaded.");
  item.showRefusal(code, detail, extra);
  if (SIGNED_OUT.has(code)) {
    const link = element("a", "", "Sign in");
    link.href = config.loginUrl;
    item.links.replaceChildren(link);
  } else if (RETRYABLE.has(code)) {
    item.offerRetry(code === "RATE_LIMIT_EXCEEDED" ? answer.retryAfter : null);
  }
}

/** The server's reason for refusing the bucket name, if that is why the upload was refused. */
function bucketRefusal(answer) {
  const errors = (answer.body && answer.body.errors) || [];
  const found = errors.find((error) => error.field === "bucket");
  return found ? found.message : null;
}

async function upload(item) {
  if (item.file.size > config.maxBytes) {
    // Refused before sending: the server would refuse it after the whole body.
    refuse(item, { status: 413, retryAfter: null, body: {
      code: "FILE_TOO_LARGE",
      detail: `The file is ${sizeText(item.file.size)}; the largest file accepted is ${config.maxSize}.`,
    } });
    return;
  }
  item.setState("uploading", "Uploading… 0%");
  const answer = await send(item);
  const badBucket = answer.status === 400 && bucketRefusal(answer);
  if (badBucket) {
    showBucketError(badBucket);
    hold(item);
    return;
  }
  if (answer.status !== 202 || !answer.body || !answer.body.status_url) {
    refuse(item, answer);
    return;
  }
  item.row.dataset.jobId = answer.body.job_id;
  item.linkImage(answer.body.image_id);
  item.setState("processing", "Queued for processing…");
  refreshQuota();
  follow(item, answer.body.status_url);
}

function enqueue(item) {
  item.setState("waiting", "Waiting to upload…");
  waiting.push(item);
  pump();
}

function pump() {
  while (active < MAX_PARALLEL_UPLOADS && waiting.length) {
    const item = waiting.shift();
    active += 1;
    upload(item).finally(() => {
      active -= 1;
      pump();
    });
  }
}

// --- Following the job --------------------------------------------------------------

async function follow(item, statusUrl) {
  const until = Date.now() + FOLLOW_FOR_MS;
  let delay = 0;
  let polls = 0;
  while (Date.now() < until) {
    await sleep(delay);
    polls += 1;
    let response;
    try {
      response = await fetch(statusUrl, {
        headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
      });
    } catch {
      item.status.textContent = "Connection lost; asking again shortly…";
      delay = MAX_POLL_DELAY_MS;
      continue;
    }
    const wait = retryAfterSeconds(response.headers.get("Retry-After"));
    const body = parseJson(await response.text());
    if (response.status === 429 || response.status >= 500) {
      item.status.textContent = `The server asks to wait; asking again in ${wait ?? 5} s…`;
      delay = (wait ?? 5) * 1000;
      continue;
    }
    if (!response.ok || !body) {
      const code = (body && body.code) || "INTERNAL_ERROR";
      item.setState("failed", "The job's status could not be read.");
      item.showRefusal(code, body && body.detail, SIGNED_OUT.has(code) ? "Sign in again to see it." : "");
      return;
    }
    if (body.status === "succeeded") {
      const classification = body.result && body.result.classification;
      item.setState("succeeded", classification ? "Classified." : "Processed.");
      if (classification) item.showLabels(classification);
      refreshQuota();
      return;
    }
    if (body.status === "failed") {
      const error = body.error || {};
      item.setState("failed", "Processing failed.");
      item.row.dataset.code = error.code || "";
      item.error.replaceChildren(element("p", "problem-detail", error.message || "The job failed."));
      return;
    }
    item.setState("processing", body.status === "running" ? "Classifying…" : "Queued for processing…");
    // At least what the server asks for; slower the longer the job takes.
    delay = Math.max((wait ?? 1) * 1000, Math.min(MAX_POLL_DELAY_MS, 250 * polls));
  }
  item.status.textContent = "Still processing; the gallery shows the result once it is ready.";
}

// --- The quota line -----------------------------------------------------------------

const quotaFigures = document.querySelectorAll("#upload-quota [data-quota]");
let quotaAsked = null;

/** Read today's uploads again from the limits API and show them in the quota line. */
async function refreshQuota() {
  // One question at a time; a file finishing meanwhile asks again once it is answered.
  if (quotaAsked) {
    quotaAsked.again = true;
    return;
  }
  quotaAsked = { again: false };
  try {
    const response = await fetch(config.limitsUrl, {
      headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
    });
    const body = response.ok ? parseJson(await response.text()) : null;
    if (body) {
      const figures = {
        used: body.used_today, limit: body.daily_limit, remaining: body.remaining_today,
      };
      for (const node of quotaFigures) {
        const value = figures[node.dataset.quota];
        if (typeof value === "number") node.textContent = value.toLocaleString("en-US");
      }
    }
  } catch {
    // The line keeps its last figures; the next file to finish asks again.
  } finally {
    const again = quotaAsked.again;
    quotaAsked = null;
    if (again) refreshQuota();
  }
}

// --- The page -----------------------------------------------------------------------

function summarize() {
  const count = (state) => items.filter((item) => item.state === state).length;
  const done = count("succeeded");
  const refused = count("rejected") + count("failed");
  const kept = count("held");
  const pending = items.length - done - refused - kept;
  const parts = [`${done} classified`];
  if (refused) parts.push(`${refused} refused or failed`);
  if (kept) parts.push(`${kept} held for a valid bucket name`);
  if (pending) parts.push(`${pending} in progress`);
  summary.textContent = `${items.length} file${items.length === 1 ? "" : "s"}: ${parts.join(", ")}.`;
}

// --- The bucket name ----------------------------------------------------------------

/** Show why the bucket name is refused beside its field, or clear it (message null). */
function showBucketError(message) {
  bucketError.textContent = message || "";
  bucketError.hidden = !message;
  if (message) bucketField.setAttribute("aria-invalid", "true");
  else bucketField.removeAttribute("aria-invalid");
}

function bucketProblem() {
  return bucketField.checkValidity() ? null : bucketField.dataset.invalidMessage;
}

function showHeld() {
  heldNotice.hidden = !held.length;
  const files = `${held.length} file${held.length === 1 ? "" : "s"}`;
  heldText.textContent = `${files} kept until the bucket name is corrected. `;
}

/** Keep a file until the bucket name is one the server accepts. */
function hold(item) {
  item.bucket = null;
  item.progress.hidden = true;
  item.setState("held", "Kept here: correct the bucket name to upload it.");
  held.push(item);
  showHeld();
}

/** Send the held files with the bucket name now in the field, if it is a valid one. */
function releaseHeld() {
  const problem = bucketProblem();
  showBucketError(problem);
  if (problem) {
    bucketField.focus();
    return;
  }
  for (const item of held.splice(0)) {
    item.bucket = bucketField.value;
    item.progress.hidden = false;
    item.progress.value = 0;
    enqueue(item);
  }
  showHeld();
}

bucketField.addEventListener("input", () => showBucketError(bucketProblem()));
bucketField.addEventListener("change", () => {
  if (held.length && !bucketProblem()) releaseHeld();
});
heldSend.addEventListener("click", releaseHeld);

function addFiles(files) {
  if (!files || !files.length) return;
  const problem = bucketProblem();
  showBucketError(problem);
  for (const file of files) {
    const item = new UploadItem(file, bucketField.value);
    items.push(item);
    if (problem) hold(item);
    else enqueue(item);
  }
  if (problem) bucketField.focus();
}

input.addEventListener("change", () => {
  addFiles(Array.from(input.files));
  input.value = ""; // the same file may be chosen again
});

form.addEventListener("submit", (event) => {
  event.preventDefault(); // Enter in the bucket field: send what is held, if anything
  if (held.length) releaseHeld();
});

// Leaving the page would cut the uploads still being sent.
window.addEventListener("beforeunload", (event) => {
  if (active || waiting.length) event.preventDefault();
});

function carriesFiles(event) {
  return event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
}

for (const name of ["dragenter", "dragover"]) {
  zone.addEventListener(name, (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("dragging");
  });
}
zone.addEventListener("dragleave", (event) => {
  if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
});
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("dragging");
  addFiles(Array.from(event.dataTransfer.files));
});
// A file dropped beside the zone must not replace the page.
for (const name of ["dragover", "drop"]) {
  window.addEventListener(name, (event) => {
    if (carriesFiles(event) && !zone.contains(event.target)) event.preventDefault();
  });
}
