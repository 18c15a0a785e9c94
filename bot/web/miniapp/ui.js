// DOM helpers, the page's texts and formatting. Text is always set as text (never innerHTML).

let texts = {};
let lang = "en";

export async function loadTexts(code) {
  const r = await fetch(`/app/texts.json?lang=${encodeURIComponent(code || "en")}`);
  const body = await r.json();
  texts = body.texts;
  lang = body.lang;
  document.documentElement.lang = lang;
}

// The text `key` with its {fields} filled in.
export function t(key, values = {}) {
  const template = texts[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

// h("p.hint#x", {attr: value}, "text", child...): an element; attrs starting with "on" are listeners.
export function h(spec, attrs = {}, ...children) {
  const [head, id] = spec.split("#");
  const [tag, ...classes] = head.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (id) el.id = id;
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Test mode (the catalog's test_mode): a banner above every screen, so nobody pays for real.
let banner = null;
export function testMode(on) {
  banner = on ? h("p.error.test-banner#test-mode", { role: "status" }, t("app_test_banner")) : null;
}

export function show(...nodes) {
  const children = [banner, ...nodes.flat(2)].filter((node) => node !== null && node !== undefined && node !== false);
  document.getElementById("view").replaceChildren(...children);
  window.scrollTo(0, 0);
}

// An ISO time as a date and time in the customer's zone and language.
export function when(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

// "1:05:09" or "4:07": what is left until `iso`.
export function countdown(iso) {
  let s = Math.max(0, Math.floor((Date.parse(iso) - Date.now()) / 1000));
  const hours = Math.floor(s / 3600);
  s -= hours * 3600;
  const minutes = Math.floor(s / 60);
  const seconds = String(s - minutes * 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

// A price in dollars as the API gives it (a decimal string: never turned into a float).
export function usd(text) {
  const [whole, frac = ""] = String(text).split(".");
  const cents = frac.replace(/0+$/, "");
  return cents ? `$${whole}.${frac.padEnd(2, "0")}` : `$${whole}`;
}
