// Passkeys on Latchkey's pages. A form with data-passkey="create" or "get" is hidden until this script runs in a
// browser with WebAuthn; submitting it asks the authenticator (options from data-options, or POSTed for to
// data-options-url with the form's fields), puts the credential's JSON in the form's credential field and posts
// the form. Without JavaScript the form stays hidden and the page's <noscript> text says what to do instead.
(function () {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function toBuf(s) {
    var b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
    var out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) {
      out[i] = b.charCodeAt(i);
    }
    return out.buffer;
  }

  function toB64(buf) {
    var bytes = new Uint8Array(buf);
    var s = '';
    for (var i = 0; i < bytes.length; i++) {
      s += String.fromCharCode(bytes[i]);
    }
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function decode(pk) {
    pk.challenge = toBuf(pk.challenge);
    if (pk.user) {
      pk.user.id = toBuf(pk.user.id);
    }
    (pk.excludeCredentials || []).concat(pk.allowCredentials || []).forEach(function (c) {
      c.id = toBuf(c.id);
    });
    return pk;
  }

  function encode(cred) {
    var r = cred.response;
    var out = {
      id: cred.id, rawId: toB64(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64(r.clientDataJSON) }
    };
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    if (r.attestationObject) {
      out.response.attestationObject = toB64(r.attestationObject);
      if (r.getTransports) {
        out.response.transports = r.getTransports();
      }
    } else {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      if (r.userHandle) {
        out.response.userHandle = toB64(r.userHandle);
      }
    }
    return JSON.stringify(out);
  }

  function options(form) {
    if (form.dataset.options) {
      return Promise.resolve(JSON.parse(form.dataset.options));
    }
    return fetch(form.dataset.optionsUrl, {
      method: 'POST', credentials: 'same-origin',
      body: new URLSearchParams(new FormData(form))
    }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) {
          throw new Error(body.error_description || 'the server refused');
        }
        return body.options;
      });
    });
  }

  document.querySelectorAll('form[data-passkey]').forEach(function (form) {
    var status = form.querySelector('[data-passkey-status]');
    form.hidden = false;
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (status) {
        status.textContent = 'Waiting for your passkey…';
      }
      options(form).then(function (o) {
        var pk = decode(o.publicKey);
        return form.dataset.passkey === 'create' ? navigator.credentials.create({ publicKey: pk }) : navigator.credentials.get({ publicKey: pk });
      }).then(function (cred) {
        form.elements.credential.value = encode(cred);
        form.submit();
      }).catch(function (err) {
        if (status) {
          status.textContent = 'No passkey was used (' + (err && err.message ? err.message : err) + '). Try again.';
        }
      });
    });
  });
})();
