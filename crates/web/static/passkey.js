// Passkeys and security keys (WebAuthn) for Portcullis's pages. The only script the pages
// load, served from our own origin (the CSP allows nothing else). A button carries the
// server's challenge in `data-options`; clicking it asks the browser's authenticator, puts the
// answer (JSON) into the form's `passkey_answer` field and submits the form, which the server
// checks. Nothing else on the page depends on script: codes work without it.
"use strict";

(function () {
  const b64uToBytes = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const bytesToB64u = (b) =>
    btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  // Browsers without the JSON helpers (before 2025) get the same conversion by hand.
  function creationOptions(pk) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(pk);
    return Object.assign({}, pk, {
      challenge: b64uToBytes(pk.challenge),
      user: Object.assign({}, pk.user, { id: b64uToBytes(pk.user.id) }),
      excludeCredentials: (pk.excludeCredentials || []).map((c) => Object.assign({}, c, { id: b64uToBytes(c.id) })),
    });
  }

  function requestOptions(pk) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(pk);
    return Object.assign({}, pk, {
      challenge: b64uToBytes(pk.challenge),
      allowCredentials: (pk.allowCredentials || []).map((c) => Object.assign({}, c, { id: b64uToBytes(c.id) })),
    });
  }

  function answerJson(cred) {
    if (cred.toJSON) return JSON.stringify(cred.toJSON());
    const r = cred.response;
    const response = { clientDataJSON: bytesToB64u(r.clientDataJSON) };
    if (r.attestationObject) response.attestationObject = bytesToB64u(r.attestationObject);
    if (r.authenticatorData) response.authenticatorData = bytesToB64u(r.authenticatorData);
    if (r.signature) response.signature = bytesToB64u(r.signature);
    if (r.userHandle) response.userHandle = bytesToB64u(r.userHandle);
    return JSON.stringify({
      id: cred.id,
      rawId: bytesToB64u(cred.rawId),
      type: cred.type,
      response: response,
      clientExtensionResults: cred.getClientExtensionResults(),
    });
  }

  function showError(form, message) {
    const el = form.querySelector(".passkey-error");
    if (el) {
      el.textContent = message;
      el.hidden = false;
    }
  }

  async function run(button) {
    const form = button.form;
    // A passkey replaces the code, never the password.
    form.querySelectorAll("input[name=code]").forEach((i) => (i.required = false));
    if (!form.reportValidity()) return;
    if (!window.PublicKeyCredential) {
      showError(form, "This browser cannot use passkeys: use a code from your authenticator app.");
      return;
    }
    const options = JSON.parse(button.dataset.options);
    try {
      const cred =
        button.dataset.passkey === "create"
          ? await navigator.credentials.create({ publicKey: creationOptions(options.publicKey) })
          : await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
      form.querySelector("input[name=passkey_answer]").value = answerJson(cred);
      form.submit();
    } catch (e) {
      showError(form, "The passkey did not answer (" + e.name + "). Try again, or use a code.");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("button[data-passkey]").forEach((b) => {
      b.hidden = false;
      b.addEventListener("click", () => run(b));
    });
  });
})();
