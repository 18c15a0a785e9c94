// Checkout: plans -> coin -> network -> the invoice, followed live until it is paid.
import { api } from "./api.js";
import { countdown, h, show, t, testMode, usd, when } from "./ui.js";
import { haptic, mainButton, openLink, tg } from "./tg.js";

const POLL_MS = 3000;
const OPEN = new Set(["pending", "processing"]);

let catalog = null;

// GET catalog, read leniently: plans with their grants and Stars price, coins with networks.
async function loadCatalog() {
  if (catalog) return catalog;
  const raw = await api.catalog();
  const plans = (raw.plans ?? []).map((p) => ({
    id: p.id,
    name: p.name ?? p.id,
    days: p.days,
    priceUsd: p.price_usd,
    description: p.description ?? "",
    chats: Array.isArray(p.chats) ? p.chats.map((c) => (typeof c === "string" ? c : c.title ?? "")).filter(Boolean) : [],
    chatCount: p.chat_count ?? (Array.isArray(p.chats) ? p.chats.length : 0),
    stars: p.stars ?? p.stars_price ?? null,
    renews: Boolean(p.renews ?? p.recurring ?? p.subscription),
  }));
  const coins = (raw.coins ?? []).map((c) => ({
    symbol: c.symbol ?? c.code ?? c.currency,
    name: c.name ?? "",
    networks: (c.networks ?? []).map((n) => ({
      code: n.code,
      label: n.label ?? n.code,
      memo: Boolean(n.memo ?? n.needs_memo ?? n.tag ?? n.requires_tag),
    })),
  }));
  testMode(Boolean(raw.test_mode));
  catalog = { plans, coins, stars: Boolean(raw.stars ?? raw.stars_enabled ?? plans.some((p) => p.stars)) };
  return catalog;
}

function failure(error) {
  haptic("error");
  // 401: initData that does not check out (tampered, or a page left open too long)
  const text = error?.status === 401 ? t("app_auth_failed") : error?.message || t("app_error");
  return h("p.error#error", { role: "alert" }, text);
}

function planCard(plan, onclick) {
  const grants = plan.chats.length
    ? t("app_plan_chats", { chats: plan.chats.join(", ") })
    : plan.chatCount
      ? t("app_plan_chat_count", { count: plan.chatCount })
      : "";
  const price = plan.priceUsd !== undefined && plan.priceUsd !== null ? usd(plan.priceUsd) : `⭐ ${plan.stars}`;
  return h(
    "button.card",
    { type: "button", dataset: { plan: plan.id }, onclick },
    h("span.card-title", {}, h("span", {}, plan.name), h("span.price", {}, price)),
    h("span.hint", {}, t("app_plan_days", { days: plan.days })),
    plan.description ? h("p", {}, plan.description) : null,
    grants ? h("p.hint", {}, grants) : null,
    plan.stars ? h("p.hint", {}, `⭐ ${plan.stars}`, plan.renews ? ` · ${t("app_plan_renews")}` : "") : null,
  );
}

export function plansScreen(nav) {
  show(h("p.hint", {}, t("app_loading")));
  loadCatalog().then(
    (found) =>
      show(
        h("h1", {}, t("app_choose_plan")),
        h(
          "div.list#plans",
          {},
          found.plans.map((plan) =>
            planCard(plan, () => {
              haptic("select");
              nav.go((n) => coinsScreen(n, plan));
            }),
          ),
        ),
      ),
    (error) => show(failure(error)),
  );
}

function coinsScreen(nav, plan) {
  const coins = catalog.coins.filter((c) => c.networks.length);
  const starsButton =
    plan.stars && catalog.stars
      ? h("button.card", { type: "button", id: "pay-stars", onclick: () => payStars(nav, plan) }, t("app_pay_stars", { stars: plan.stars }))
      : null;
  show(
    h("h1", {}, t("app_choose_coin", { plan: plan.name })),
    h(
      "div.list#coins",
      {},
      coins.map((coin) =>
        h(
          "button.card",
          {
            type: "button",
            dataset: { coin: coin.symbol },
            onclick: () => {
              haptic("select");
              nav.go((n) => networksScreen(n, plan, coin));
            },
          },
          h("span.card-title", {}, h("span", {}, coin.symbol), h("span.hint", {}, coin.name)),
        ),
      ),
      starsButton,
    ),
    coins.length || starsButton ? null : h("p.hint", {}, t("app_no_coins")),
  );
}

function networksScreen(nav, plan, coin) {
  const status = h("div");
  show(
    h("h1", {}, coin.symbol),
    h("p.hint", {}, t("app_choose_network", { coin: coin.symbol })),
    h(
      "div.list#networks",
      {},
      coin.networks.map((network) =>
        h(
          "button.card",
          {
            type: "button",
            dataset: { network: network.code },
            onclick: async (event) => {
              haptic("select");
              event.currentTarget.disabled = true;
              status.replaceChildren(h("p.hint", {}, t("app_loading")));
              try {
                const invoice = await api.initialize(plan.id, coin.symbol, network.code);
                nav.go((n) => invoiceScreen(n, invoice));
              } catch (error) {
                status.replaceChildren(failure(error));
                event.currentTarget.disabled = false;
              }
            },
          },
          network.label,
        ),
      ),
    ),
    status,
  );
}

async function payStars(nav, plan) {
  haptic("select");
  try {
    const order = await api.initialize(plan.id, "XTR");
    openStarsInvoice(nav, order);
  } catch (error) {
    show(failure(error));
  }
}

// Telegram's own payment sheet; once it says "paid", wait for the bot to credit the order.
export function openStarsInvoice(nav, order) {
  tg.openInvoice(order.invoice_link, (outcome) => {
    if (outcome === "paid") {
      haptic("success");
      nav.go((n) => starsWaitScreen(n, order));
    } else if (outcome === "failed") {
      haptic("error");
    }
  });
}

function starsWaitScreen(nav, order) {
  show(h("h1", {}, order.plan_name), h("p.status#status", { dataset: { state: "pending" } }, t("app_stars_waiting")));
  const timer = setInterval(async () => {
    const payment = await api.status(order.payment_id).catch(() => null);
    if (payment?.status === "paid") nav.replace((n) => paidScreen(n, payment));
  }, POLL_MS);
  return () => clearInterval(timer);
}

function copyRow(label, value, id, extra = "", unit = "") {
  const shown = h(`span.value${extra}`, { id }, value);
  const button = h("button.button.small.secondary", { type: "button", "data-copy": id }, t("app_copy"));
  button.addEventListener("click", async () => {
    haptic("light");
    try {
      await navigator.clipboard.writeText(shown.textContent); // what is shown now (a top-up)
      button.textContent = t("app_copied");
      setTimeout(() => (button.textContent = t("app_copy")), 1500);
    } catch {
      button.textContent = "✖";
    }
  });
  return h(
    "div.field",
    {},
    h("div.field-label", {}, label),
    h("div.row", {}, shown, unit ? h("span.amount", {}, unit) : null, button),
  );
}

// What the status of an open invoice means for the customer.
function stateOf(payment) {
  if (payment.status === "paid") return ["paid", t("app_state_paid")];
  if (OPEN.has(payment.status) && payment.topup_amount) {
    return ["partial", t("app_state_partial", { topup: payment.topup_amount, coin: payment.crypto_currency })];
  }
  const key = `app_state_${payment.status}`;
  return [payment.status, t(key)];
}

export function invoiceScreen(nav, invoice) {
  let payment = invoice;
  const status = h("p.status#status");
  const timeLeft = h("p.hint#countdown");
  const note = h("p.hint#claim-note");
  const reference = h("input#claim-ref", { type: "text", autocomplete: "off", spellcheck: "false", maxlength: "128", placeholder: t("app_claim_hint") });
  const claim = h(
    "form.claim#claim",
    {},
    reference,
    h("button.button", { type: "submit" }, t("app_claim_send")),
  );
  claim.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = reference.value.trim();
    if (!value) return;
    try {
      const answer = await api.claim(payment.payment_id, value);
      note.textContent = answer?.message || answer?.detail || t("app_claim_sent");
      haptic("success");
      refresh();
    } catch (error) {
      note.replaceChildren(failure(error));
    }
  });
  const cancel = h("button.button.danger#cancel", { type: "button" }, t("app_cancel"));
  // a closed invoice (expired, cancelled) cannot be paid: back to the plans for a new one
  const restart = h("button.button#restart", { type: "button", onclick: () => nav.root("plans") }, t("app_new_invoice"));
  cancel.addEventListener("click", async () => {
    try {
      await api.cancel(payment.payment_id);
      haptic("warning");
      await refresh();
    } catch (error) {
      note.replaceChildren(failure(error));
    }
  });

  const amountText = invoice.topup_amount || invoice.crypto_amount;
  const amountRow = copyRow(t("app_send_exactly"), amountText, "amount", ".amount", invoice.crypto_currency);
  const fee = h("p.warning#fee");
  show(
    h("h1", {}, t("app_invoice", { plan: invoice.plan_name, id: invoice.payment_id })),
    invoice.qr_png_url ? h("img.qr#qr", { src: invoice.qr_png_url, alt: invoice.deposit_address, width: "240", height: "240" }) : null,
    amountRow,
    h("div.field", {}, h("div.field-label", {}, t("app_network")), h("div#network", {}, invoice.network_label)),
    copyRow(t("app_address"), invoice.deposit_address, "address"),
    invoice.deposit_tag ? copyRow(t("app_memo"), invoice.deposit_tag, "memo") : null,
    fee,
    timeLeft,
    status,
    h("h2", {}, t("app_i_paid")),
    claim,
    note,
    cancel,
    restart,
  );

  function draw() {
    // after a partial payment, what is left to send (the top-up) replaces the amount
    const due = payment.topup_amount || payment.crypto_amount || amountText;
    amountRow.querySelector("#amount").textContent = due;
    fee.textContent = t("app_fee_warning", { network: invoice.network_label, amount: due, coin: invoice.crypto_currency });
    const [state, text] = stateOf(payment);
    status.dataset.state = state;
    status.textContent = text;
    const open = OPEN.has(payment.status);
    timeLeft.textContent = open ? t("app_expires_in", { time: countdown(payment.expires_at) }) : "";
    claim.hidden = !open;
    cancel.hidden = !open || payment.status !== "pending" || Boolean(payment.topup_amount);
    restart.hidden = open || payment.status === "paid";
  }

  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      payment = await api.status(invoice.payment_id);
      if (payment.status === "paid") {
        haptic("success");
        nav.replace((n) => paidScreen(n, payment));
        return;
      }
      draw();
    } catch {
      // a missed poll: the next one tries again
    } finally {
      busy = false;
    }
  }

  draw();
  mainButton(t("app_check"), refresh);
  const poll = setInterval(refresh, POLL_MS);
  const tick = setInterval(draw, 1000);
  return () => {
    clearInterval(poll);
    clearInterval(tick);
  };
}

function joinLinks(payment) {
  const raw = payment.join_links ?? payment.chat_links ?? payment.invite_links ?? [];
  return raw
    .map((link) => (typeof link === "string" ? { url: link, title: "" } : { url: link.url ?? link.invite_link, title: link.title ?? "" }))
    .filter((link) => typeof link.url === "string" && link.url.startsWith("https://"));
}

export function paidScreen(nav, payment) {
  const until = h("p#paid-until", {}, t("app_paid_activating", { plan: payment.plan_name }));
  const links = joinLinks(payment);
  show(
    h("h1", {}, payment.plan_name),
    h("p.status#status", { dataset: { state: "paid" } }, t("app_state_paid")),
    until,
    links.length
      ? h(
          "div.list#join",
          {},
          links.map((link) =>
            h("button.button", { type: "button", onclick: () => openLink(link.url) }, link.title ? t("app_join", { title: link.title }) : t("app_join_chat")),
          ),
        )
      : null,
    (payment.tx_hashes ?? []).map((tx) => h("p.tx", {}, t("app_tx", { tx }))),
  );
  mainButton(t("app_tab_account"), () => nav.root("account"));
  api.me().then(
    (me) => {
      const ends = (me.subscriptions ?? [])
        .filter((s) => s.plan === payment.plan && s.active)
        .map((s) => s.ends_at)
        .sort();
      if (ends.length) until.textContent = t("app_paid_until", { plan: payment.plan_name, until: when(ends[ends.length - 1]) });
    },
    () => {},
  );
}
