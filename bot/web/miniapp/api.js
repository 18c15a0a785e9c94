// The JSON API (bot/web/api.py), always as the Mini App user: Authorization: tma <initData>.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error || "";
  }
}

let auth = "";

export function authorize(initData) {
  auth = `tma ${initData}`;
}

export async function call(method, path, body) {
  const headers = { Authorization: auth, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(`/api/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

const id = (value) => encodeURIComponent(value);

export const api = {
  catalog: () => call("GET", "catalog"),
  initialize: (plan, coin, network) =>
    call("POST", "payments/crypto/initialize", network ? { plan, crypto_currency: coin, network } : { plan, crypto_currency: coin }),
  status: (paymentId) => call("GET", `payments/crypto/status/${id(paymentId)}`),
  cancel: (paymentId) => call("POST", `payments/${id(paymentId)}/cancel`),
  claim: (paymentId, reference) => call("POST", `payments/${id(paymentId)}/claim`, { reference }),
  history: () => call("GET", "payments/history?limit=50"),
  me: () => call("GET", "users/me"),
};
