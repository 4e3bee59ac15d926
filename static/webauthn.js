// Passkeys in the browser: turns the server's WebAuthn options (base64url
// strings) into what navigator.credentials expects, and the answer back into
// JSON. Each page marks its area with data-webauthn="<ceremony>"; without
// JavaScript or WebAuthn the areas stay hidden and the password forms work.
(function () {
  "use strict";

  function toBuf(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = toBuf(pk.challenge);
    pk.user.id = toBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    return pk;
  }

  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = toBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    return pk;
  }

  function registration(cred) {
    var r = cred.response;
    return {
      id: cred.id, rawId: toB64(cred.rawId), type: cred.type,
      response: {
        attestationObject: toB64(r.attestationObject),
        clientDataJSON: toB64(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : undefined
      },
      extensions: cred.getClientExtensionResults()
    };
  }

  function assertion(cred) {
    var r = cred.response;
    return {
      id: cred.id, rawId: toB64(cred.rawId), type: cred.type,
      response: {
        authenticatorData: toB64(r.authenticatorData),
        clientDataJSON: toB64(r.clientDataJSON),
        signature: toB64(r.signature),
        userHandle: r.userHandle ? toB64(r.userHandle) : null
      },
      extensions: cred.getClientExtensionResults()
    };
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) { throw new Error(data.error || "Something went wrong. Please try again."); }
        return data;
      });
    });
  }

  function failed(area, e) {
    var el = area.querySelector("#passkey-error");
    if (!el || (e && e.name === "AbortError")) { return; }
    el.textContent = e && e.name === "NotAllowedError"
      ? "The passkey request was cancelled or timed out."
      : (e && e.message) || "Something went wrong. Please try again.";
    el.hidden = false;
  }

  function go(data) { window.location.assign(data.redirect); }

  // Asks for an assertion: `start` and `finish` are the endpoints, `extra`
  // goes into both bodies, `mediation` is "conditional" for autofill.
  function assert(area, start, finish, extra, mediation, signal) {
    var body = Object.assign({ csrf: area.dataset.csrf }, extra);
    return post(start, body).then(function (c) {
      var opts = { publicKey: requestOptions(c.options) };
      if (mediation) { opts.mediation = mediation; }
      if (signal) { opts.signal = signal; }
      return navigator.credentials.get(opts).then(function (cred) {
        return post(finish, Object.assign({}, body, {
          ceremony: c.ceremony, credential: assertion(cred), next: area.dataset.next || null
        }));
      });
    }).then(go);
  }

  function create(area, start, finish, extra, name) {
    var body = Object.assign({ csrf: area.dataset.csrf }, extra);
    return post(start, body).then(function (c) {
      return navigator.credentials.create({ publicKey: creationOptions(c.options) })
        .then(function (cred) {
          return post(finish, Object.assign({}, body, {
            ceremony: c.ceremony, name: name, credential: registration(cred)
          }));
        });
    }).then(go);
  }

  function on(id, area, fn) {
    var btn = document.getElementById(id);
    if (!btn) { return; }
    btn.addEventListener("click", function () {
      var err = area.querySelector("#passkey-error");
      if (err) { err.hidden = true; }
      btn.disabled = true;
      fn().catch(function (e) { failed(area, e); }).then(function () { btn.disabled = false; });
    });
  }

  function signIn(area) {
    var autofill = null;
    // Conditional UI: the browser offers passkeys in the username field's
    // autofill; picking one signs in. The button aborts it and asks modally.
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok) { return; }
        autofill = new AbortController();
        assert(area, "/webauthn/login/start", "/webauthn/login/finish", {}, "conditional", autofill.signal)
          .catch(function (e) { failed(area, e); });
      });
    }
    on("passkey-signin", area, function () {
      if (autofill) { autofill.abort(); autofill = null; }
      return assert(area, "/webauthn/login/start", "/webauthn/login/finish", {}, null, null);
    });
  }

  var ceremonies = {
    signin: signIn,
    "second-factor": function (area) {
      on("passkey-second", area, function () {
        return assert(area, "/webauthn/second-factor/start", "/webauthn/second-factor/finish",
          { pending: area.dataset.pending }, null, null);
      });
    },
    verify: function (area) {
      on("passkey-verify", area, function () {
        return assert(area, "/webauthn/verify/start", "/webauthn/verify/finish", {}, null, null);
      });
    },
    register: function (area) {
      on("passkey-add", area, function () {
        var kind = document.getElementById("passkey-kind").value;
        var name = document.getElementById("passkey-name").value ||
          (kind === "security_key" ? "Security key" : "Passkey");
        return create(area, "/webauthn/register/start", "/webauthn/register/finish", { kind: kind }, name);
      });
    },
    invite: function (area) {
      on("invite-enroll", area, function () {
        var token = encodeURIComponent(area.dataset.token);
        var name = document.getElementById("passkey-name").value || "Passkey";
        return create(area, "/invite/" + token + "/start", "/invite/" + token + "/finish", {}, name);
      });
    }
  };

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential) { return; }
    document.querySelectorAll("[data-webauthn]").forEach(function (area) {
      var run = ceremonies[area.dataset.webauthn];
      if (!run) { return; }
      area.hidden = false;
      run(area);
    });
  });
})();
