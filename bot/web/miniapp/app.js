// The Mini App: checkout (plans -> coin -> network -> invoice) and the customer's account.
import { authorize } from "./api.js";
import { h, loadTexts, show, t } from "./ui.js";
import { applyTheme, backButton, mainButton, tg } from "./tg.js";
import { plansScreen } from "./checkout.js";
import { accountScreen } from "./account.js";

// Navigation: a stack of screens; each screen is a function that draws the view and may return
// a function that stops what it started (timers) when it is left.
const stack = [];
let stop = null;

function draw() {
  if (stop) stop();
  stop = null;
  mainButton(null);
  backButton(stack.length > 1 ? back : null);
  const result = stack[stack.length - 1](nav);
  stop = typeof result === "function" ? result : null;
}

export const nav = {
  go(screen) {
    stack.push(screen);
    draw();
  },
  replace(screen) {
    stack[stack.length - 1] = screen;
    draw();
  },
  root(tab) {
    stack.length = 0;
    stack.push(tab === "account" ? accountScreen : plansScreen);
    for (const button of document.querySelectorAll(".tab")) {
      if (button.dataset.tab === tab) button.setAttribute("aria-current", "page");
      else button.removeAttribute("aria-current");
    }
    draw();
  },
};

function back() {
  if (stack.length > 1) {
    stack.pop();
    draw();
  }
}

async function start() {
  applyTheme();
  const user = tg?.initDataUnsafe?.user;
  await loadTexts(user?.language_code || navigator.language);
  if (!tg || !tg.initData) {
    show(h("p.message", { id: "outside" }, t("app_outside")));
    return;
  }
  authorize(tg.initData);
  tg.onEvent?.("themeChanged", applyTheme);
  tg.ready?.();
  tg.expand?.();
  const tabs = document.getElementById("tabs");
  document.getElementById("tab-plans").textContent = t("app_tab_plans");
  document.getElementById("tab-account").textContent = t("app_tab_account");
  tabs.addEventListener("click", (event) => {
    const tab = event.target.closest?.(".tab")?.dataset.tab;
    if (tab) nav.root(tab);
  });
  tabs.hidden = false;
  nav.root("plans");
}

start().catch((error) => {
  show(h("p.message.error", {}, t("app_error")), h("p.hint", {}, String(error?.message ?? error)));
});
