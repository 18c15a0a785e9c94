// Telegram.WebApp (https://telegram.org/js/telegram-web-app.js), and what the page uses of it.

export const tg = window.Telegram?.WebApp ?? null;

const THEME = {
  bg_color: "--tg-bg",
  text_color: "--tg-text",
  hint_color: "--tg-hint",
  link_color: "--tg-link",
  button_color: "--tg-button",
  button_text_color: "--tg-button-text",
  secondary_bg_color: "--tg-secondary-bg",
  destructive_text_color: "--tg-destructive",
};

// Telegram's colours as CSS variables (CSSOM: allowed by the page's CSP), light or dark.
export function applyTheme() {
  const root = document.documentElement;
  root.dataset.scheme = tg?.colorScheme === "dark" ? "dark" : "light";
  const params = tg?.themeParams ?? {};
  for (const [name, variable] of Object.entries(THEME)) {
    if (/^#[0-9a-fA-F]{3,8}$/.test(params[name] ?? "")) root.style.setProperty(variable, params[name]);
    else root.style.removeProperty(variable);
  }
}

export function haptic(kind) {
  const feedback = tg?.HapticFeedback;
  if (!feedback) return;
  if (kind === "select") feedback.selectionChanged();
  else if (kind === "light") feedback.impactOccurred("light");
  else feedback.notificationOccurred(kind); // success, warning, error
}

let mainHandler = null;

// The MainButton with `text` doing `action`; none: hidden.
export function mainButton(text, action) {
  const button = tg?.MainButton;
  if (!button) return;
  if (mainHandler) button.offClick(mainHandler);
  mainHandler = null;
  if (!text) {
    button.hide();
    return;
  }
  mainHandler = action;
  button.setText(text);
  button.onClick(mainHandler);
  button.show();
}

let backHandler = null;

export function backButton(action) {
  const button = tg?.BackButton;
  if (!button) return;
  if (backHandler) button.offClick(backHandler);
  backHandler = action;
  if (action) {
    button.onClick(action);
    button.show();
  } else {
    button.hide();
  }
}

// A chat invite link (t.me/+...) inside Telegram; anything else as a link.
export function openLink(url) {
  if (/^https:\/\/t\.me\//.test(url) && tg?.openTelegramLink) tg.openTelegramLink(url);
  else if (tg?.openLink) tg.openLink(url);
}
