// A browser client that behaves as WeWeb's Token-Based Auth plugin does (weweb-assets/plugin-auth-token,
// src/wwPlugin.js at 137370c), configured as Latchkey's README recipe says, plus the app workflows the recipe
// describes (sign in, change the name, sign out). e2e/weweb_test.go drives it in headless Chromium from an origin
// other than Latchkey's. Written from the plugin's behaviour, not copied; what it reproduces, flaws included:
//
//  * The tokens live in two cookies of the app's origin, ww-auth-access-token and ww-auth-refresh-token, which
//    every tab shares. A tab copies them into its own memory when it loads and from then on uses only that copy.
//  * Auth type "Auth Basic Token": every call sends "Authorization: Basic <access token>", the raw token, not
//    base64(user:password).
//  * A 401 on any call other than the refresh call or a retry makes the tab refresh: one refresh at a time per
//    tab (the calls that fail meanwhile wait for it), POST to the refresh endpoint with the body
//    {"refresh_token": <the refresh token the tab holds>} ("Refresh token through: Request Body"). From the answer
//    it stores ONLY the access token, read with the "Access token field response key" (access_token; an empty key
//    means the whole body), so it sends the refresh token of the sign-in for ever. Then it retries the failed call
//    once, with the extra header "ww-retry: true" and the new token.
//  * When the refresh fails, the original 401 stands (the plugin logs "Unable to get access token from refresh
//    token."), and the failed refresh stays remembered in that tab: the plugin never clears a rejected refresh, so
//    every later 401 in the tab fails at once.
//  * Its "Logout" action only deletes the cookies; the recipe's sign-out workflow calls Latchkey's logout first.
//
// Calls go through fetch, shaped as axios (which the plugin uses) sends them: JSON bodies with Content-Type
// application/json, Accept "application/json, text/plain, */*", no cookies to the other origin.
(function () {
    const params = new URLSearchParams(location.search);
    const api = params.get('api') + '/api/v1/auth';
    const clientID = params.get('client_id');
    const tab = params.get('tab') || 'tab';

    // The plugin's settings as the README recipe fills them in.
    const settings = {
        type: 'basic-token', // Auth type: Auth Basic Token
        name: '', // Custom header name (only for Custom Header)
        userEndpoint: api + '/me',
        refreshTokenEndpoint: api + '/refresh',
        refreshType: 'custom-body', // Refresh token through: Request Body
        refreshFieldRequest: 'refresh_token', // Refresh token field/header request key
        refreshFieldResponse: 'access_token', // Access token field response key
    };

    const ACCESS_COOKIE_NAME = 'ww-auth-access-token';
    const REFRESH_COOKIE_NAME = 'ww-auth-refresh-token';
    const vars = { accessToken: null, refreshToken: null, user: null, isAuthenticated: false };
    const log = []; // every call this tab made: what it sent and what came back
    const errors = []; // what the plugin would have logged

    function getCookie(name) {
        for (const part of document.cookie.split('; ')) {
            const eq = part.indexOf('=');
            if (eq > 0 && part.slice(0, eq) === name) return decodeURIComponent(part.slice(eq + 1));
        }
        return null;
    }
    function setCookie(name, value) {
        // The plugin: expire 1y, secure (Chromium treats http://127.0.0.1 as a secure context).
        document.cookie = `${name}=${encodeURIComponent(value)}; max-age=31536000; path=/; secure; samesite=lax`;
    }
    function removeCookie(name) {
        document.cookie = `${name}=; max-age=0; path=/; secure; samesite=lax`;
    }

    function buildHeader(type, name, token) {
        switch (type) {
            case 'bearer-token':
                return { Authorization: `Bearer ${token}` };
            case 'basic-token':
                return { Authorization: `Basic ${token}` };
            case 'custom-header':
                return { [name]: token };
            default:
                return {};
        }
    }

    // lodash's _.get(data, key, fallback) for a dotted key.
    function getPath(data, key, fallback) {
        let v = data;
        for (const k of String(key).split('.')) {
            if (v === null || v === undefined) return fallback;
            v = v[k];
        }
        return v === undefined ? fallback : v;
    }

    // send is one axios request without interceptors: it resolves {status, data} for a 2xx, and rejects with
    // error.config and (when an answer came) error.response = {status, data, config} otherwise.
    async function send(config) {
        const headers = { Accept: 'application/json, text/plain, */*' };
        for (const [k, v] of Object.entries(config.headers || {})) headers[k] = String(v);
        let body;
        if (config.data !== undefined) {
            body = JSON.stringify(config.data);
            headers['Content-Type'] = 'application/json';
        }
        const entry = {
            tab, method: config.method.toUpperCase(), path: new URL(config.url).pathname,
            authorization: headers.Authorization || '', wwRetry: headers['ww-retry'] || '',
            refreshToken: (config.data && config.data.refresh_token) || '', status: 0, error: '', data: null,
        };
        log.push(entry);
        let res;
        try {
            res = await fetch(config.url, { method: entry.method, headers, body, credentials: 'same-origin' });
        } catch (e) {
            // A refused CORS preflight or a network failure: axios's "Network Error", with no response.
            entry.error = String(e);
            const err = new Error('Network Error');
            err.config = config;
            throw err;
        }
        entry.status = res.status;
        const text = await res.text();
        let data = text;
        try {
            data = text ? JSON.parse(text) : '';
        } catch (e) {}
        entry.data = data;
        if (res.status >= 200 && res.status < 300) return { status: res.status, data, config };
        const err = new Error('Request failed with status code ' + res.status);
        err.config = config;
        err.response = { status: res.status, data, config };
        throw err;
    }

    // request is axios.request with the plugin's response interceptor installed.
    async function request(config) {
        try {
            return await send(config);
        } catch (error) {
            return onRejected(error);
        }
    }

    let refreshPromise = null;
    async function onRejected(error) {
        const response = error.response;
        const isRefreshRequest = !!response && response.config.url === settings.refreshTokenEndpoint;
        const isRetry = !!response && !!(response.config.headers || {})['ww-retry'];
        const status = response ? response.status : null;
        if (status === 401 && !isRefreshRequest && !isRetry) {
            try {
                if (!refreshPromise) refreshPromise = refreshAccessToken();
                await refreshPromise;
                refreshPromise = null;
                error.config.headers = {
                    'ww-retry': true,
                    ...error.config.headers,
                    ...buildHeader(settings.type, settings.name, vars.accessToken),
                };
                return request(error.config); // not awaited here: a failed retry is the caller's error
            } catch (err) {
                errors.push('Unable to get access token from refresh token.');
            }
        }
        throw error;
    }

    // The plugin's "Store token" action.
    function storeToken({ accessToken, refreshToken }) {
        if (accessToken) {
            setCookie(ACCESS_COOKIE_NAME, accessToken);
            vars.accessToken = accessToken;
        }
        if (refreshToken) {
            setCookie(REFRESH_COOKIE_NAME, refreshToken);
            vars.refreshToken = refreshToken;
        }
    }

    function removeToken() {
        removeCookie(ACCESS_COOKIE_NAME);
        vars.accessToken = null;
        removeCookie(REFRESH_COOKIE_NAME);
        vars.refreshToken = null;
    }

    // The plugin's "Fetch User" action: the whole answer becomes the user.
    async function fetchUser() {
        const { data } = await request({
            method: 'get', url: settings.userEndpoint,
            headers: buildHeader(settings.type, settings.name, vars.accessToken),
        });
        vars.user = data;
        vars.isAuthenticated = true;
        return data;
    }

    async function refreshAccessToken() {
        const body = settings.refreshType === 'custom-body' ? { [settings.refreshFieldRequest]: vars.refreshToken } : {};
        // The plugin passes its header modes as axios's config, so they send no header: only the body mode works.
        const { data } = await request({ method: 'post', url: settings.refreshTokenEndpoint, data: body });
        storeToken({ accessToken: getPath(data, settings.refreshFieldResponse, data) });
        return data;
    }

    // The plugin's "Logout" action.
    function logout() {
        removeToken();
        vars.user = null;
        vars.isAuthenticated = false;
    }

    // The plugin's start in a tab: copy the cookies, fetch the user when there is a token.
    async function initAuth() {
        vars.accessToken = getCookie(ACCESS_COOKIE_NAME);
        vars.refreshToken = getCookie(REFRESH_COOKIE_NAME);
        if (vars.accessToken) await fetchUser();
    }

    // The app's workflows, as the recipe builds them.
    async function signIn(email, password) {
        const { data } = await request({ method: 'post', url: api + '/login', data: { client_id: clientID, email, password } });
        storeToken({ accessToken: data.access_token, refreshToken: data.refresh_token });
        await fetchUser();
        return data;
    }
    async function changeName(name) {
        const { data } = await request({
            method: 'patch', url: api + '/me', data: { name },
            headers: buildHeader(settings.type, settings.name, vars.accessToken),
        });
        vars.user = data;
        return data;
    }
    async function signOut() {
        await request({ method: 'post', url: api + '/logout', headers: buildHeader(settings.type, settings.name, vars.accessToken) });
        logout();
    }

    // outcome runs a workflow and reports how it ended, for the test to read.
    async function outcome(fn) {
        try {
            return { ok: true, data: await fn() };
        } catch (e) {
            return { ok: false, status: e.response ? e.response.status : 0, error: String(e) };
        }
    }
    // at runs fn (one of the workflows below) at the given wall-clock moment, so two tabs can start a call together.
    async function at(ms, fn) {
        const wait = ms - Date.now();
        if (wait > 0) await new Promise(r => setTimeout(r, wait));
        return fn();
    }

    const ready = outcome(initAuth);
    window.ww = {
        ready, log, errors, at,
        signIn: (email, password) => outcome(() => signIn(email, password)),
        fetchUser: () => outcome(fetchUser),
        changeName: name => outcome(() => changeName(name)),
        signOut: () => outcome(signOut),
        state: () => ({
            accessToken: vars.accessToken, refreshToken: vars.refreshToken, user: vars.user,
            isAuthenticated: vars.isAuthenticated,
            accessCookie: getCookie(ACCESS_COOKIE_NAME), refreshCookie: getCookie(REFRESH_COOKIE_NAME),
        }),
    };
})();
