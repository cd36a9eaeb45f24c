// The HTTP API for the pages (docs/http-api.md): JSON in and out with the session cookie.

/** An HTTP error answer: status plus the contract's {error: {code, message}}. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** Call the HTTP API with the session cookie; JSON in and out; throws ApiError. */
export async function api(method, path, body, { raw = false, contentType } = {}) {
  const headers = { Accept: "application/json" };
  let payload;
  if (body !== undefined) {
    if (contentType) {
      headers["Content-Type"] = contentType;
      payload = body;
    } else {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  } catch (err) {
    throw new ApiError(0, "network", String(err));
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = raw ? text : null;
    }
  }
  if (!response.ok) {
    const err = data?.error ?? {};
    throw new ApiError(
      response.status,
      err.code ?? "http_" + response.status,
      err.message ?? response.statusText,
      data,
    );
  }
  return raw ? text : data;
}

/** What a request for an interpreter of `tag` asks for (POST /api/requests, or a room's). */
export function requestBody(tag, audioOnly) {
  return audioOnly ? { language: tag, preferences: { audio_only: true } } : { language: tag };
}

/** POST a request for an interpreter and return it. One whose `attempt` was cancelled while
 * it was on its way is withdrawn at once and gives null; its id goes into `finished`, the
 * page's requests whose late news is ignored. */
export async function sendRequest(path, body, attempt, finished) {
  const { request } = await api("POST", path, body);
  if (!attempt.cancelled) return request;
  finished.add(request.id);
  api("DELETE", `/api/requests/${encodeURIComponent(request.id)}`).catch(() => {});
  return null;
}

/** The role's landing page (the server redirects `/` the same way). */
export const HOME = {
  counsellor: "/counsellor",
  interpreter: "/interpreter",
  finance: "/finance",
  admin: "/admin",
  management: "/stats",
  terminal: "/terminal",
};
