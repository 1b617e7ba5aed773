// Passkeys on the two-step sign-in pages (/account/mfa and /login/mfa).
//
// A button with `data-passkey="<server function URL>"` inside a form with `data-passkey-form`
// asks the server for the WebAuthn options, hands them to the browser
// (navigator.credentials.create() to register, .get() to sign in), writes the browser's answer
// into the form's hidden `credential` field (and `ceremony`, when registering) and submits the
// form: the hydrated dashboard sends it as a server function call, a plain page as a form post.
// Loaded once by the page shell; every other part of the dashboard works without it.
(() => {
  "use strict";

  // The passkey buttons show, and the "needs JavaScript" notes hide, once this runs (main.css).
  document.documentElement.classList.add("passkeys-ready");

  const say = (form, text) => {
    const status = form.querySelector("[data-passkey-status]");
    if (status) status.textContent = text;
  };

  const refusal = async (response) => {
    try {
      const body = await response.json();
      if (body && typeof body.message === "string") return body.message;
    } catch (_) {
      // Not JSON: fall through.
    }
    return `The server refused (HTTP ${response.status}).`;
  };

  const run = async (button, form) => {
    const mode = form.dataset.passkeyForm;
    if (!window.PublicKeyCredential || !PublicKeyCredential.parseCreationOptionsFromJSON) {
      say(form, "This browser cannot use passkeys here: use a current browser, or a code from the authenticator app.");
      return;
    }
    if (mode === "register" && !form.reportValidity()) return;
    button.disabled = true;
    say(form, "Asking the server…");
    try {
      const response = await fetch(button.dataset.passkey, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body: "",
      });
      if (!response.ok) {
        say(form, await refusal(response));
        return;
      }
      const answer = await response.json();
      const options = JSON.parse(answer.options);
      say(form, mode === "register" ? "Follow your browser to create the passkey…" : "Use your passkey…");
      const credential =
        mode === "register"
          ? await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
          : await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
      if (!credential) {
        say(form, "No passkey was used.");
        return;
      }
      const ceremony = form.querySelector('input[name="ceremony"]');
      if (ceremony) ceremony.value = answer.ceremony;
      form.querySelector('input[name="credential"]').value = JSON.stringify(credential);
      say(form, "Checking…");
      form.requestSubmit();
    } catch (error) {
      const cancelled = error && error.name === "NotAllowedError";
      say(form, cancelled ? "The passkey prompt was closed or timed out: try again." : `The passkey could not be used: ${error && error.message ? error.message : error}`);
    } finally {
      button.disabled = false;
    }
  };

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button[data-passkey]") : null;
    const form = button ? button.closest("form[data-passkey-form]") : null;
    if (!form) return;
    event.preventDefault();
    run(button, form);
  });
})();
