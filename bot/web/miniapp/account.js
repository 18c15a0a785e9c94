// The customer's account: running subscriptions, open invoices to resume or cancel, history.
import { api } from "./api.js";
import { h, show, t, when } from "./ui.js";
import { haptic } from "./tg.js";
import { invoiceScreen, openStarsInvoice } from "./checkout.js";

const OPEN = new Set(["pending", "processing"]);

function amount(payment) {
  return payment.rail === "stars" ? `⭐ ${payment.stars}` : `${payment.crypto_amount} ${payment.crypto_currency}`;
}

function stateLabel(payment) {
  return t(`app_state_${payment.status}`);
}

function subscriptionsList(me) {
  const subs = [...(me.subscriptions ?? [])].sort((a, b) => Number(b.active) - Number(a.active) || (a.ends_at < b.ends_at ? 1 : -1));
  if (!subs.length) return h("p.hint", {}, t("app_no_subscriptions"));
  return h(
    "div.list#subscriptions",
    {},
    subs.map((s) =>
      h(
        "div.card",
        { dataset: { plan: s.plan, active: String(s.active) } },
        h("span.card-title", {}, t(s.active ? "app_sub_until" : "app_sub_ended", { plan: s.plan_name, until: when(s.ends_at) })),
      ),
    ),
  );
}

function openList(nav, payments, reload) {
  const open = payments.filter((p) => OPEN.has(p.status));
  if (!open.length) return null;
  return [
    h("h2", {}, t("app_open_invoices")),
    h(
      "div.list#open",
      {},
      open.map((p) => {
        const resume = h("button.button.small", { type: "button" }, t("app_resume"));
        resume.addEventListener("click", async () => {
          haptic("select");
          if (p.rail === "stars") {
            openStarsInvoice(nav, p);
            return;
          }
          const fresh = await api.status(p.payment_id); // a fresh signed QR link
          nav.go((n) => invoiceScreen(n, fresh));
        });
        const cancel =
          p.rail === "crypto" && p.status === "pending" && !p.topup_amount
            ? h("button.button.small.danger", { type: "button" }, t("app_cancel"))
            : null;
        cancel?.addEventListener("click", async () => {
          try {
            await api.cancel(p.payment_id);
            haptic("warning");
          } catch {
            haptic("error");
          }
          reload();
        });
        return h(
          "div.card",
          { dataset: { payment: p.payment_id } },
          h("span.card-title", {}, h("span", {}, p.plan_name), h("span.price", {}, amount(p))),
          h("p.hint", {}, stateLabel(p)),
          h("div.row", {}, resume, cancel),
        );
      }),
    ),
  ];
}

function historyList(payments) {
  if (!payments.length) return h("p.hint", {}, t("app_no_history"));
  return h(
    "div.list#history",
    {},
    payments.map((p) =>
      h(
        "div.card",
        { dataset: { payment: p.payment_id, status: p.status } },
        h("span.card-title", {}, h("span", {}, p.plan_name), h("span.price", {}, amount(p))),
        h("p.hint", {}, `${stateLabel(p)} · ${when(p.paid_at || p.created_at)}`),
        (p.tx_hashes ?? []).map((tx) => h("p.tx", {}, t("app_tx", { tx }))),
      ),
    ),
  );
}

export function accountScreen(nav) {
  let alive = true;
  async function load() {
    try {
      const [me, history] = await Promise.all([api.me(), api.history()]);
      if (!alive) return;
      const payments = history.payments ?? [];
      show(
        h("h1", {}, t("app_subscriptions")),
        subscriptionsList(me),
        openList(nav, payments, load),
        h("h2", {}, t("app_history")),
        historyList(payments),
      );
    } catch (error) {
      if (alive) show(h("p.error", { role: "alert" }, error?.message || t("app_error")));
    }
  }
  show(h("p.hint", {}, t("app_loading")));
  load();
  return () => {
    alive = false;
  };
}
