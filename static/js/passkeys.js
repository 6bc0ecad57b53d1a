// Passkeys (WebAuthn) on the dashboard's forms, with the browser's own authenticators.
//
// <form data-passkey="register" data-options-url="..."> asks the server for creation
// options, has the browser create a credential, and posts it in the `credential` field.
// <form data-passkey="assert" data-options-url="..." [data-challenge="..."]> asks for
// request options, has the browser sign them, and posts the answer in `webauthn`.
// The server verifies everything; without this script the forms do nothing harmful.

const STEP_UP_PAGE = "/account/security/verify/";

function toBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function toBase64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function creationOptions(json) {
  return {
    ...json,
    challenge: toBytes(json.challenge),
    user: { ...json.user, id: toBytes(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) })),
  };
}

function requestOptions(json) {
  return {
    ...json,
    challenge: toBytes(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) })),
  };
}

function registrationJson(credential) {
  const response = credential.response;
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      attestationObject: toBase64url(response.attestationObject),
      transports: response.getTransports ? response.getTransports() : [],
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

function assertionJson(credential) {
  const response = credential.response;
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      authenticatorData: toBase64url(response.authenticatorData),
      signature: toBase64url(response.signature),
      userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

async function fetchOptions(form) {
  const body = form.dataset.challenge ? { challenge: form.dataset.challenge } : {};
  const response = await fetch(form.dataset.optionsUrl, {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRFToken": form.elements.namedItem("csrfmiddlewaretoken").value,
    },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (answer.code === "MFA_STEP_UP_REQUIRED") {
    const next = encodeURIComponent(window.location.pathname);
    window.location.assign(`${STEP_UP_PAGE}?next=${next}`);
    return null;
  }
  if (!response.ok) throw new Error(answer.detail || `The server answered ${response.status}.`);
  return answer;
}

function say(form, text) {
  const status = form.querySelector("[data-passkey-status]");
  if (status) status.textContent = text;
}

async function ceremony(form) {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    say(form, "This browser cannot use passkeys.");
    return;
  }
  say(form, "Follow your browser's prompt…");
  const options = await fetchOptions(form);
  if (options === null) return;
  if (form.dataset.passkey === "register") {
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
    form.elements.namedItem("credential").value = JSON.stringify(registrationJson(credential));
  } else {
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    form.elements.namedItem("webauthn").value = JSON.stringify(assertionJson(credential));
  }
  say(form, "Checking…");
  form.submit();
}

for (const form of document.querySelectorAll("form[data-passkey]")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ceremony(form).catch((error) => {
      say(form, `The passkey was not used: ${error.message || error.name}`);
    });
  });
}
