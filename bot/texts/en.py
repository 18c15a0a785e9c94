"""English: the complete catalogue. Telegram HTML; ``{fields}`` are filled (and escaped) by
:meth:`bot.texts.Texts.get`. Other languages translate any subset of these keys."""

MESSAGES: dict[str, str] = {
    # --- menu ----------------------------------------------------------------------------------
    "welcome": (
        "<b>Welcome!</b> Pick a plan below. You pay in crypto straight to the shop's OKX "
        "account; your subscription starts as soon as the payment arrives."
    ),
    "welcome_stars": (
        "<b>Welcome!</b> Pick a plan below. You pay with Telegram Stars, right here in "
        "Telegram; your subscription starts as soon as the payment arrives."
    ),
    "welcome_both": (
        "<b>Welcome!</b> Pick a plan below. You pay in crypto straight to the shop's OKX "
        "account, or with Telegram Stars; your subscription starts as soon as the payment "
        "arrives."
    ),
    "plans_title": "<b>Plans</b>",
    "plan_line": "<b>{name}</b>: {price} for {days} days. {description}",
    "plan_button": "{name} · {price} / {days} days",
    "current_subscription": "Your <b>{plan}</b> is active until {until} ({days_left} days left).",
    "choose_coin": "<b>{plan}</b>: {price} for {days} days.\nWhich coin will you pay with?",
    "choose_network": (
        "Which network will you send <b>{coin}</b> on? Pick the one your wallet or exchange "
        "sends on: a payment on another network may be lost."
    ),
    "choose_stars": "<b>{plan}</b>: {price} for {days} days.\nYou pay with Telegram Stars.",
    "no_coins": "No coin can be paid right now (deposits are paused at the exchange). Try later.",
    # --- Telegram Stars ------------------------------------------------------------------------
    "button_stars": "⭐ Telegram Stars",
    "button_pay_stars": "Pay ⭐ {stars}",
    "stars_invoice_title": "{plan}",
    "stars_invoice_description": "{plan}: {days} days of access. Invoice {invoice}.",
    "stars_subscription_description": (
        "{plan}: 30 days of access, renewed by Telegram every 30 days until you turn it off. "
        "Invoice {invoice}."
    ),
    "stars_subscription_offer": (
        "<b>{plan}</b>: ⭐ {stars} every 30 days, renewed by Telegram until you turn it off "
        "(/status). Tap the button to pay."
    ),
    "stars_unavailable": "Paying with Telegram Stars is not possible right now. Try again soon.",
    "stars_refused_unknown": "This invoice is not one of the shop's. Pick a plan again: /plans",
    "stars_refused_not_yours": "This invoice was made for someone else. Pick a plan: /plans",
    "stars_refused_expired": "This invoice has expired. Pick the plan again for a new one.",
    "stars_refused_paid": "This invoice is paid already. Do not pay it again.",
    "stars_refused_plan_gone": "This plan is no longer sold. Pick another one: /plans",
    "stars_refused_price_changed": "The price has changed. Pick the plan again for a new invoice.",
    "stars_paid": "⭐ Payment received: {stars} Stars. <b>{plan}</b> is active until {until}.",
    "stars_paid_subscription": (
        "⭐ Payment received: {stars} Stars. <b>{plan}</b> is active until {until}. Telegram "
        "renews it every 30 days for {stars} Stars; turn that off any time in /status."
    ),
    "stars_renewed": "⭐ <b>{plan}</b> renewed ({stars} Stars): active until {until}.",
    "stars_refunded": (
        "↩️ Your {stars} Stars for <b>{plan}</b> were refunded, and the time they paid for was "
        "taken back."
    ),
    "stars_renewal_line": "⭐ Telegram renews <b>{plan}</b> every 30 days for {stars} Stars.",
    "stars_renewal_off_line": "⭐ Renewal of <b>{plan}</b> is off: it ends {until}.",
    "button_renewal_off": "Stop renewing {plan}",
    "button_renewal_on": "Renew {plan} again every 30 days",
    "stars_renewal_now_off": "Renewal of <b>{plan}</b> is off. It stays active until {until}.",
    "stars_renewal_now_on": "Telegram will renew <b>{plan}</b> every 30 days again.",
    "stars_renewal_failed": "Telegram did not change the renewal: {reason}. Try again later.",
    "button_back": "« Back",
    "button_plans": "Plans",
    "button_checkout_menu": "Checkout",
    "button_open_checkout": "Open checkout",
    "button_renew": "Renew {plan}",
    # the command menu (plain text, at most 256 characters each)
    "command_start": "Plans and your subscription",
    "command_plans": "Pick a plan",
    "command_status": "Your subscription",
    "command_history": "Your invoices",
    "command_cancel": "Cancel an open invoice",
    "command_help": "How paying works",
    "command_paysupport": "Help with a payment",
    "command_terms": "Terms of sale",
    # --- test mode (OKX_MODE=simulated): before every customer screen of a rehearsal ----------
    "test_banner": "🧪 <b>TEST MODE</b>: a rehearsal, not a real invoice or payment.\n\n",
    # --- the invoice ---------------------------------------------------------------------------
    "invoice_caption": (
        "{banner}<b>{plan}</b>: {days} days, {price}\n"
        "Send exactly: <code>{amount}</code> {coin}\n"
        "Network: <b>{network}</b>\n"
        "{tag_line}"
        "Address: <code>{address}</code>\n"
        "Pay by: {expires}\n"
        "\n"
        "⚠️ Send exactly this amount, on {network} only. Paying from an exchange? It takes its "
        "withdrawal fee out of the amount you send{fee_example}, so make sure the amount that "
        "ARRIVES is exactly {amount} {coin}.\n"
        "Invoice <code>{invoice}</code>"
    ),
    "invoice_tag_line": "⚠️ MEMO / TAG (required): <code>{tag}</code>\n",
    "invoice_fee_example": " (OKX charges {fee} {coin} on this network)",
    "invoice_image_amount": "{amount} {coin}",
    "invoice_image_network": "{network}",
    "invoice_reused": "You already have this invoice open: here it is again.",
    "banner_paid": "✅ <b>PAID</b>: thank you! Do not pay this invoice again.\n\n",
    "banner_expired": "⛔ <b>EXPIRED - do not pay</b>\n\n",
    "banner_cancelled": "⛔ <b>CANCELLED - do not pay</b>\n\n",
    "banner_closed": "⛔ <b>CLOSED - do not pay</b>\n\n",
    "banner_partial": (
        "⚠️ <b>PART RECEIVED</b>: now send exactly <code>{topup}</code> {coin} to the same "
        "address, not the amount below.\n\n"
    ),
    "button_check": "🔄 Check payment",
    "button_claim": "🧾 I paid: claim it",
    "button_cancel": "✖️ Cancel",
    # --- checking, claiming, cancelling ---------------------------------------------------------
    "check_pending": (
        "Nothing has arrived for invoice {invoice} yet. Payments show up about a minute after "
        "the network confirms them; I'll message you."
    ),
    "check_processing": "Your payment for {invoice} has been seen; waiting for confirmations.",
    "check_partial": "Part of the payment for {invoice} arrived; please send {topup} {coin} more.",
    "check_paid": "Invoice {invoice} is paid. Thank you!",
    "check_closed": "Invoice {invoice} is closed ({status}). Do not pay it.",
    "check_review": "A payment for {invoice} is with an admin for review; you'll hear back here.",
    "claim_prompt": (
        "Send me the <b>transaction hash (TXID)</b> of your payment for invoice "
        "<code>{invoice}</code>.\n"
        "Paid from an OKX account by internal transfer? Send your <b>OKX withdrawal ID</b> "
        "instead (in OKX: Assets › History › Withdrawal)."
    ),
    "claim_attached": "Found it: that payment is now on invoice {invoice}. {outcome}",
    "claim_attached_paid": "Your subscription is being activated; you'll get a message.",
    "claim_attached_waiting": "It is waiting for network confirmations; I'll message you.",
    "claim_not_found": (
        "No payment with that reference has reached the shop's account yet. I've asked the "
        "exchange again; if it is a fresh payment, send the reference again in a few minutes."
    ),
    "claim_admin": "I've passed this to an admin to check; you'll hear back here.",
    "claim_bad_reference": (
        "That doesn't look like a transaction hash or a withdrawal ID. Send just the hash, "
        "e.g. 0x3f2a… or a 64-character code."
    ),
    "claim_rejected": "That payment can't be put on invoice {invoice}: {reason}",
    "claim_reason_already_attached": "it already paid another invoice.",
    "claim_reason_other_currency": "it is in another coin.",
    "claim_reason_older_than_invoice": "it was made before this invoice was created.",
    "claim_reason_after_invoice_window": "it arrived after this invoice stopped taking payments.",
    "claim_reason_blocked": "this shop does not take claims from your account; contact support.",
    "claim_reason_invoice_closed": "the invoice is {status}.",
    "claim_reason_other": (
        "it does not match this invoice. Admins see every payment that arrived without a match "
        "and can put it on your invoice by hand."
    ),
    "claim_rate_limited": (
        "You've sent many payment references in the last hour. Please try again later. "
        "Admins see every payment that arrived without a match and can put it on your invoice."
    ),
    "claim_expired": "I wasn't waiting for a reference any more. Press “I paid: claim it” again.",
    "cancel_done": "Invoice {invoice} is cancelled. Do not pay it.",
    "cancel_refused": "Invoice {invoice} can't be cancelled: {reason}",
    "cancel_reason_received": "a payment for it has already been seen.",
    "cancel_reason_closed": "it is {status}.",
    "cancel_none": "You have no open invoice to cancel.",
    "cancel_pick": "Which invoice should I cancel?",
    "cancel_button": "Cancel {invoice} ({amount} {coin})",
    # --- creating an invoice fails --------------------------------------------------------------
    "error_prices": "Prices are unavailable right now. Please try again in a minute.",
    "error_crypto_unavailable": (
        "Crypto payment is unavailable right now. Please try again later."
    ),
    "error_crypto_unavailable_stars": (
        "Crypto payment is unavailable right now. You can pay with Telegram Stars instead."
    ),
    "error_paused": "Deposits of {coin} on {network} are paused at the exchange. Pick another.",
    "error_below_minimum": (
        "This plan costs less than the exchange's minimum deposit of {coin} on {network}. "
        "Please pick another coin or network."
    ),
    "error_busy": "The shop is very busy right now. Please try again in a few minutes.",
    "error_too_many": "You have {limit} open invoices. Pay or cancel one first (/cancel).",
    "error_rate_limited": "You've created many invoices in the last hour. Please try later.",
    "error_too_many_held": (
        "Your recent invoices still hold their payment amounts for a while, even cancelled ones. "
        "Please pay one of them, or try again later."
    ),
    "error_blocked": "You can't create invoices in this shop. Please contact its support.",
    "error_unknown_choice": "That option is no longer offered. /plans shows what is.",
    "error_generic": "Something went wrong on our side. Please try again in a minute.",
    "stale_button": "This button is no longer valid.",
    "not_yours": "This invoice isn't yours.",
    # --- the JSON API (sent as plain text: tags stripped, entities unescaped) -------------------
    "api_instructions": (
        "Send exactly {amount} {coin} on {network} to {address}{tag_part} before {expires}. "
        "Exchanges deduct their withdrawal fee from what you send: the amount that arrives must "
        "be exact."
    ),
    "api_instructions_topup": (
        "Part of the payment arrived. Now send exactly {topup} {coin} on {network} to "
        "{address}{tag_part} before {expires}: this amount, not the original one."
    ),
    "api_instructions_tag": " with the MEMO/TAG {tag} (required)",
    # --- account ---------------------------------------------------------------------------------
    "status_none": "You have no active subscription. Pick a plan: /plans",
    "status_line": "<b>{plan}</b>: active until {until} ({days_left} days left)",
    "status_expired_line": "<b>{plan}</b>: ended {until}",
    "status_title": "<b>Your subscriptions</b>",
    "history_none": "No invoices yet. Pick a plan: /plans",
    "history_title": "<b>Your recent invoices</b>",
    "history_line": "{date} · <code>{invoice}</code> · {plan} · {amount} {coin} · {status}{tx}",
    "history_tx": "\n   tx <code>{tx}</code>",
    "history_stars_line": (
        "{date} · <code>{payment}</code> · {plan} · ⭐ {stars} Stars · {status}{renewal}"
    ),
    "history_stars_renewal": " · renewal",
    "status_refunded": "refunded",
    "status_pending": "waiting for payment",
    "status_processing": "payment seen, confirming",
    "status_paid": "paid",
    "status_expired": "expired",
    "status_cancelled": "cancelled",
    "status_invalid": "closed",
    "help": (
        "<b>How it works</b>\n"
        "1. /plans: pick a plan, a coin and a network.\n"
        "2. Send exactly the amount shown to the address shown, on that network.\n"
        "3. Your subscription starts when the payment arrives (usually within minutes).\n\n"
        "/status: your subscription · /history: your invoices · /cancel: cancel an open "
        "invoice\n"
        "Paid but nothing happened? Press “I paid: claim it” under the invoice and send the "
        "transaction hash.\n"
        "/paysupport: help with a payment · /terms: the terms of sale"
    ),
    "help_stars": (
        "<b>How it works</b>\n"
        "1. /plans: pick a plan and tap ⭐ Telegram Stars.\n"
        "2. Pay the Stars invoice in Telegram.\n"
        "3. Your subscription starts at once. A 30-day plan is renewed by Telegram every 30 "
        "days until you turn that off in /status.\n\n"
        "/status: your subscription · /history: your payments\n"
        "/paysupport: help with a payment · /terms: the terms of sale"
    ),
    # --- Telegram's rules for bots that sell: /terms and /paysupport ---------------------------
    "terms_default": (
        "<b>Terms of sale</b>\n"
        "<b>What you buy:</b> access to the plan you choose for the number of days it states. It "
        "starts when your payment arrives; a renewal bought early starts when the current "
        "period ends. It is a digital service: nothing is shipped.\n"
        "<b>Paying:</b> in crypto, the exact amount an invoice shows, on the network it names, "
        "before it expires; or in Telegram Stars where a plan offers them. A crypto payment "
        "that arrives short, late or twice is looked at by the shop's admins, who settle it or "
        "arrange a refund.\n"
        "<b>Renewals:</b> a crypto payment never renews by itself: you are reminded before your "
        "access ends and renew by paying a new invoice. A Telegram Stars subscription is renewed "
        "by Telegram every 30 days until you turn it off in /status.\n"
        "<b>Refunds:</b> the shop's admins decide each case (for example a payment sent twice, "
        "or access that was not given). Crypto is sent back to an address you give them, less "
        "the network's fee; Stars are refunded through Telegram, and the time they paid for ends. "
        "Time already used is not refunded.\n"
        "<b>Questions about a payment:</b> /paysupport"
    ),
    "terms_merchant": (
        "<b>Terms of sale</b>\n{text}{link}\n\nQuestions about a payment: /paysupport"
    ),
    "terms_link": "\n\nThe full terms: {url}",
    "terms_url_only": (
        "<b>Terms of sale</b>\nThe shop's terms are here: {url}\n\n"
        "Questions about a payment: /paysupport"
    ),
    "paysupport_contact": (
        "💬 For help with a payment, write to {contact}. Give your invoice number (/history "
        "lists them) and, if you paid, the transaction hash."
    ),
    "paysupport_told": (
        "🔔 The shop's admins have been told you need help with a payment and will write to you "
        "here."
    ),
    "paysupport_blocked": "This shop does not take support requests from your account here.",
    "unknown": "I didn't understand that. /help shows what I can do.",
    # --- chat access (channels and groups a plan grants) ---------------------------------------
    "access_invite": (
        "🔑 Your <b>{plan}</b> includes <b>{chat}</b>. Join with this link: it admits one "
        "person (you) and works until {until}.\n{link}"
    ),
    "access_invite_replaced": (
        "⚠️ Someone else used your invite link to <b>{chat}</b>; they were removed. Here is a new "
        "link, for you only (do not share it), valid until {until}:\n{link}"
    ),
    "access_join_button": "Join {chat}",
    "access_removed": (
        "Your <b>{plan}</b> subscription ended on {ended}, so you were removed from "
        "<b>{chat}</b>. Renew to get back in:"
    ),
    "join_on_the_way": "🔑 New invite links are on the way ({count}).",
    "join_all_joined": "You are already in every chat your subscription includes.",
    "join_nothing": "None of your running subscriptions includes a channel or group.",
    "command_join": "Invite links to your paid chats",
    "members_usage": "Usage: /members &lt;plan&gt; (plans with chats: {plans})",
    "members_none": (
        "No plan gives access to a chat. Add <code>chats = [...]</code> to a plan in the plans "
        "file."
    ),
    "members_chat": "<b>{chat}</b> (<code>{chat_id}</code>): {members} members, {invited} invited",
    "members_next": "  {customer}: until {until}",
    "alert_access_failing": (
        "🚫 Cannot {action} in <b>{chat}</b> (<code>{chat_id}</code>): {error}\n"
        "Make the bot an administrator there with the rights to invite users and to ban "
        "members. It keeps retrying."
    ),
    "alert_chat_rights": "🚫 The bot cannot manage its paid chats:\n{problems}",
    # --- progress messages (from the outbox) ----------------------------------------------------
    "payment_detected": (
        "💡 Payment of {received} {coin} for invoice {invoice} seen. Waiting for network "
        "confirmations; I'll message you when it is done."
    ),
    "payment_partial": (
        "Part of your payment for invoice {invoice} arrived: {received} {coin}. "
        "{shortfall_line}To finish, send <code>{topup}</code> {coin} to the same address on "
        "{network}, exactly this amount, by {until}."
    ),
    "payment_shortfall": "Still missing: about {shortfall} {coin}. ",
    "invoice_paid": (
        "✅ Payment received for invoice {invoice}. <b>{plan}</b> is active until {until}."
    ),
    "invoice_paid_no_end": "✅ Payment received for invoice {invoice}. Thank you!",
    "invoice_expired": (
        "Invoice {invoice} has expired. Do not pay it any more; pick a plan again to get a new one."
    ),
    "payment_partial_expired": (
        "Invoice {invoice} ended before the rest of the payment arrived. An admin will look at "
        "what you paid and contact you here."
    ),
    "payment_late_review": (
        "A payment for invoice {invoice} arrived after it expired. An admin will review it; "
        "you'll hear back here."
    ),
    "payment_on_hold": (
        "The exchange is holding a payment for invoice {invoice} for checks. An admin has been "
        "told; you'll hear back here."
    ),
    "invoice_rejected": "Invoice {invoice} was closed by an admin. Do not pay it.",
    "invoice_revoked": (
        "An admin moved or refunded the payment recorded for invoice {invoice}, so the time it "
        "gave was removed. Reply here if you think this is wrong."
    ),
    "subscription_reminder": (
        "⏰ Your <b>{plan}</b> ends on {until} ({days} day(s) left). Renew now to keep it going: "
        "the new period starts when the current one ends."
    ),
    "subscription_expired": "Your <b>{plan}</b> subscription has ended. Renew any time:",
    "subscription_granted": (
        "🎁 You've been given {days} days of <b>{plan}</b>: active until {until}."
    ),
    # --- admins --------------------------------------------------------------------------------
    "admin_only": "This command is for the shop's admins.",
    "admin_usage_confirm": "Usage: /confirm &lt;invoice_id&gt; [deposit_id or tx hash]",
    "admin_usage_reject": "Usage: /reject &lt;invoice_id&gt;",
    "admin_usage_reassign": "Usage: /reassign &lt;deposit_id or tx hash&gt; &lt;invoice_id&gt;",
    "admin_usage_refunded": "Usage: /refunded &lt;deposit_id or tx hash&gt;",
    "admin_usage_user": "Usage: /user &lt;telegram_id&gt;",
    "admin_usage_grant": "Usage: /grant &lt;telegram_id&gt; &lt;plan&gt; [days]",
    "admin_usage_simulate": (
        "Usage: /simulate_deposit &lt;invoice_id&gt; [amount] (default: the invoice's exact amount)"
    ),
    "admin_simulate_live": (
        "/simulate_deposit works only in test mode (OKX_MODE=simulated). This shop takes real "
        "payments through OKX: nothing changed."
    ),
    "admin_simulate_bad_amount": (
        "Not an amount: <code>{amount}</code>. Write a positive number such as 29.5 or "
        "29.0012. Nothing changed."
    ),
    "admin_simulated": (
        "🧪 TEST: simulated a deposit of <code>{amount}</code> {coin} on {network} to invoice "
        "<code>{invoice}</code> (tx <code>{tx}</code>). The payment check settles it as a real "
        "one; checking now."
    ),
    "admin_usage_block": "Usage: /block &lt;telegram_id&gt;",
    "admin_usage_unblock": "Usage: /unblock &lt;telegram_id&gt;",
    "admin_blocked": (
        "Customer <code>{customer}</code> is blocked: no new invoices or claims. {cancelled} open "
        "invoice(s) cancelled; {freed} payment amount(s) of their invoices that received nothing "
        "are free for other customers now. If they still pay one of those amounts, it may settle "
        "someone else's invoice: refund it by hand and record it with /refunded. "
        "/unblock {customer} undoes the block (not the freed amounts)."
    ),
    "admin_unblocked": "Customer <code>{customer}</code> may buy again.",
    "admin_not_blocked": "Customer <code>{customer}</code> was not blocked.",
    "admin_refused": "Not done: {reason}",
    "admin_confirm_without_deposit": (
        "Confirm invoice <code>{invoice}</code> WITHOUT a deposit? This activates {plan} for "
        "customer {customer} although no payment is recorded."
    ),
    "admin_button_force": "Yes, confirm without a deposit",
    "admin_confirmed": (
        "Invoice <code>{invoice}</code> is paid (marked). Subscription until {until}."
    ),
    "admin_rejected": "Invoice <code>{invoice}</code> is rejected; the customer was told.",
    "admin_reassigned": (
        "Deposit moved to invoice <code>{invoice}</code>, now paid. Subscription until {until}."
    ),
    "admin_refunded_done": "Deposit <code>{deposit}</code> is recorded as refunded.",
    "admin_granted": "Granted {days} days of {plan} to {customer}: active until {until}.",
    "admin_pending_title": "<b>Pending</b> (page {page} of {pages}, newest first)",
    "admin_pending_empty": "Nothing pending. 🎉",
    "admin_crypto_off": (
        "This shop sells for Telegram Stars only (no OKX keys are set): there are no crypto "
        "invoices or deposits to review. /refund refunds a Stars payment; /grant gives time "
        "by hand."
    ),
    "admin_pending_open": "<b>Open invoices</b> ({total})",
    "admin_pending_review": "<b>Waiting for review</b> ({total})",
    "admin_pending_unmatched": "<b>Unmatched deposits</b> ({total})",
    "admin_invoice_line": (
        "<code>{invoice}</code> · {plan} · {amount} {coin} {network} · {status}{exceptions} · "
        "customer <code>{customer}</code> · {date}"
    ),
    "admin_deposit_line": (
        "<code>{deposit}</code> · {amount} {coin} ({chain}) · state {state} · {date}{tx}{hint}"
    ),
    "admin_deposit_hint": " · maybe <code>{invoice}</code>",
    "admin_button_confirm": "✅ {invoice}",
    "admin_button_reject": "✖️ {invoice}",
    "admin_button_prev": "« Newer",
    "admin_button_next": "Older »",
    "admin_stats": (
        "<b>Stats</b>\nActive subscribers: {active}\nUnmatched deposits: {unmatched}\n"
        "Outbox: {outbox}\n\n{windows}"
    ),
    "admin_stats_window": "<b>Last {window}</b>: {count} paid, ${usd}\n{plans}{coins}{stars}",
    "admin_stats_stars": (
        "  ⭐ Telegram Stars: {payments} paid, {stars} Stars received, {refunds} refunded "
        "({refunded} Stars), {kept} Stars kept\n"
    ),
    "admin_stats_item": "  {name}: {value}\n",
    "admin_export": "Payments {first} to {last} (UTC): {count}.",
    "admin_export_empty": "No payments from {first} to {last} (UTC).",
    "admin_export_usage": (
        "Usage: <code>/export [from] [to]</code>, dates as YYYY-MM-DD (UTC, both days "
        "included), e.g. <code>/export 2026-01-01 2026-01-31</code>. Without dates: the last "
        "30 days."
    ),
    "admin_user_unknown": "No customer {customer}.",
    "admin_user": (
        "<b>Customer</b> <code>{customer}</code> · language {language} · {reachable} · since "
        "{since}\nOpen invoices: {open}\n{subscriptions}\n{invoices}{stars}"
    ),
    "admin_user_stars": "\n\n<b>Telegram Stars</b>\n{subscriptions}{payments}",
    "admin_user_stars_renews": (
        "⭐ Telegram renews <b>{plan}</b> every 30 days for {stars} Stars (order "
        "<code>{order}</code>)\n"
    ),
    "admin_user_stars_renewal_off": (
        "⭐ Renewal of <b>{plan}</b> is off (order <code>{order}</code>)\n"
    ),
    "admin_user_stars_line": (
        "<code>{payment}</code> · {plan} · ⭐ {stars} · {date} · order <code>{order}</code>"
        "{renewal}{refunded}"
    ),
    "admin_user_stars_renewal": " · renewal",
    "admin_user_stars_refunded": " · refunded {date}",
    "admin_user_stars_none": "No Stars payments.",
    "admin_reachable": "reachable",
    "admin_unreachable": "blocked the bot",
    # --- merchant webhooks (/webhooks, /redeliver) ----------------------------------------------
    "webhooks_none": "No webhook URL is configured (MERCHANT_WEBHOOK_URLS).",
    "webhooks_title": "<b>Webhooks</b>",
    "webhooks_url": (
        "<b>{url}</b>: {delivered} delivered · {pending} pending · {failed} failed"
        " · id <code>{id}</code>"
    ),
    "webhooks_problem": (
        "  #{delivery} {type} <code>{event}</code> · tries: {attempts} · {outcome} · {when}"
    ),
    "webhooks_next": "next try {when}",
    "webhooks_gave_up": "given up",
    "webhooks_hint": "/redeliver &lt;delivery id&gt; or /redeliver failed sends again.",
    "admin_usage_redeliver": "Usage: /redeliver &lt;delivery id&gt; or /redeliver failed",
    "redeliver_one": "Delivery #{delivery} goes out again within seconds.",
    "redeliver_failed": "{count} failed deliveries go out again within seconds.",
    "redeliver_unknown": "No delivery #{delivery} to a configured webhook URL.",
    "webhooks_gone_title": "⚠️ <b>No longer in MERCHANT_WEBHOOK_URLS</b>, still pending:",
    "webhooks_gone_url": (
        "<b>{url}</b> · id <code>{id}</code>: {pending} pending, the oldest from {since}"
    ),
    "webhooks_gone_hint": (
        "/webhooks move &lt;old id&gt; &lt;new id&gt; sends them to a configured URL; "
        "/webhooks drop &lt;old id&gt; gives them up."
    ),
    "admin_usage_webhooks": (
        "Usage: /webhooks, /webhooks move &lt;old id&gt; &lt;new id&gt; or "
        "/webhooks drop &lt;old id&gt; (ids as /webhooks shows them)"
    ),
    "webhooks_moved": (
        "{moved} pending deliveries moved from {old} to {new}: they go out within seconds."
    ),
    "webhooks_moved_known": " {dropped} that {new} has already were dropped.",
    "webhooks_dropped": "{count} pending deliveries to {old} dropped.",
    "webhooks_unknown_old": (
        "No URL that is gone with pending deliveries has the id {id} (/webhooks lists them). "
        "Nothing changed."
    ),
    "webhooks_unknown_new": (
        "No URL in MERCHANT_WEBHOOK_URLS has the id {id} (/webhooks lists them). Nothing changed."
    ),
    # --- admin alerts (from the outbox) ------------------------------------------------------
    "alert_stars_paid": (
        "⭐ Paid in Stars: {stars} Stars · {plan} · customer <code>{customer}</code> · "
        "payment <code>{payment}</code>{renewal} · until {until}"
    ),
    "alert_stars_renewal": " (renewal)",
    "alert_stars_refunded": (
        "↩️ Stars refunded ({by}): payment <code>{payment}</code> · {stars} Stars · {plan} · "
        "customer <code>{customer}</code> · now until {until}"
    ),
    "alert_stars_unmatched": (
        "❓ Stars payment <code>{charge}</code> of {stars} Stars from customer "
        "<code>{customer}</code>: {reason}. Nothing was credited; check it in Telegram."
    ),
    # /refund (admins)
    "command_refund_usage": (
        "Usage: /refund &lt;payment, invoice or charge id&gt;: refunds a Telegram Stars payment "
        "and takes back what it paid for."
    ),
    "refund_unknown": "No Telegram Stars payment has the id {ref}. Nothing changed.",
    "refund_done": (
        "↩️ Refunded {stars} Stars of payment <code>{payment}</code> to customer "
        "<code>{customer}</code>; {plan} now ends {until}."
    ),
    "refund_already": "Payment <code>{payment}</code> was refunded already. Nothing changed.",
    "refund_found_refunded": (
        "Telegram says payment <code>{payment}</code> was refunded already (outside the bot): "
        "recorded now, and what it paid for taken back."
    ),
    "refund_failed": "Telegram did not refund payment <code>{payment}</code>: {reason}.",
    "alert_paid": (
        "💰 Paid: invoice <code>{invoice}</code> · {plan} · {amount} {coin} {network} · "
        "customer <code>{customer}</code>{exceptions} · until {until}"
    ),
    "alert_unmatched": (
        "❓ Unmatched deposit <code>{deposit}</code>: {amount} {coin} ({chain}){hint}. "
        "/pending to decide."
    ),
    "alert_on_hold": "🛑 OKX holds deposit <code>{deposit}</code> (state {state}){invoice_part}.",
    "alert_frozen": "🧊 Invoice <code>{invoice}</code> frozen: {reason}. Check it in /pending.",
    "alert_duplicate": (
        "♻️ Second payment for invoice <code>{invoice}</code>: deposit <code>{deposit}</code> "
        "{amount} {coin}. Refund or /reassign it."
    ),
    "alert_after_close": (
        "📬 Payment for closed invoice <code>{invoice}</code>: deposit <code>{deposit}</code> "
        "{amount} {coin}. /confirm, /reassign or refund."
    ),
    "alert_late": (
        "⏳ Late payment for invoice <code>{invoice}</code>: {received} {coin}. "
        "/confirm {invoice} or /reject {invoice}."
    ),
    "alert_partial_unfinished": (
        "🧩 Unfinished partial payment on invoice <code>{invoice}</code>: {received} {coin} of "
        "{amount}. /confirm or refund."
    ),
    "alert_topup_unavailable": (
        "🧩 Partial payment on <code>{invoice}</code> ({received} {coin}) but no top-up amount was "
        "free; decide in /pending."
    ),
    "alert_not_sold": (
        "🪙 {count} deposit(s) in coins or networks this shop does not sell ({kinds}), e.g. "
        "<code>{deposit}</code>. Kept in /pending; nobody was credited."
    ),
    "alert_unsettled": (
        "⏳ Invoice <code>{invoice}</code>: {received} {coin} seen but not confirmed by OKX when "
        "its payment window ended{exceptions}. It still settles if OKX confirms; /pending."
    ),
    "alert_revoked": (
        "↩️ Invoice <code>{invoice}</code> no longer covered ({received} {coin} left, {reason}): "
        "its period was taken back; it is now {status}. /pending to decide the rest."
    ),
    "alert_claim_review": (
        "🧾 Claim for invoice <code>{invoice}</code> needs a decision (deposit {deposit}, "
        "{reason})."
    ),
    "alert_okx_auth": (
        "🔑 OKX refused the API key: deposits are not being read until it is fixed.\n"
        "Details: {error}"
    ),
    "alert_okx_down": "📡 OKX has not answered since {since}: {error}. Retrying every poll.",
    "alert_okx_recovered": "📡 OKX answers again (trouble since {since}); polling resumed.",
    "alert_clock": "🕒 This server's clock is {offset} s off OKX's. Fix NTP on the host.",
    "alert_capacity": (
        "📉 Running low: {what} for {currency} {subject}: {free} of {total} free. {advice}"
    ),
    "alert_capacity_amounts": "Raise AMOUNT_OFFSET_CAP_PERCENT or offer another network.",
    "alert_capacity_addresses": "New invoices now share addresses; add addresses in OKX.",
    "alert_webhook_failed": (
        "🪝 Webhook to {url} given up after 3 days: {event_type} <code>{event_id}</code> "
        "(delivery #{delivery_id}, {attempts} attempts, last: {error}). /webhooks lists the "
        "failures; /redeliver failed sends them again."
    ),
    "alert_webhook_gone": (
        "🪝 {count} webhook deliveries are still pending to URLs no longer in "
        "MERCHANT_WEBHOOK_URLS:\n{urls}\n/webhooks move &lt;old id&gt; &lt;new id&gt; sends "
        "them to a configured URL; /webhooks drop &lt;old id&gt; gives them up."
    ),
    "alert_unrenderable": (
        "⚠️ Outbox message #{message_id} ({kind}, to the {audience}) cannot be rendered by this "
        "version of the bot: it was given up on. Deploy the version that wrote it, or tell the "
        "recipient by hand."
    ),
    "alert_support": (
        '🆘 /paysupport from <a href="tg://user?id={customer}">{who}</a> (id '
        "<code>{customer}</code>{username}). Recent invoices:\n{invoices}\n"
        "/user {customer} shows their subscriptions."
    ),
    "alert_support_username": ", @{username}",
    "alert_support_invoice": (
        "<code>{invoice}</code> · {plan} · {amount} {coin} · {status} · {date}"
    ),
    "alert_support_no_invoices": "none",
    "alert_support_unnamed": "a customer",
    "alert_generic": "ℹ️ {kind}: {details}",
    # --- Mini App page (bot/web/miniapp: plain text, {fields} filled by the page) ---------
    "app_outside": "Open this page from the bot in Telegram.",
    "app_loading": "Loading…",
    "app_test_banner": "🧪 TEST MODE: a rehearsal, not a real invoice or payment.",
    "app_tab_plans": "Plans",
    "app_tab_account": "My account",
    "app_choose_plan": "Choose a plan",
    "app_plan_days": "{days} days",
    "app_plan_chats": "Access to: {chats}",
    "app_plan_chat_count": "Access to {count} private chats",
    "app_plan_renews": "With Telegram Stars: renewed every 30 days until you turn it off",
    "app_choose_coin": "{plan}: which coin will you pay with?",
    "app_choose_network": (
        "Which network will you send {coin} on? Pick the one your wallet or exchange sends on: "
        "a payment on another network may be lost."
    ),
    "app_pay_stars": "Pay ⭐ {stars}",
    "app_no_coins": (
        "No coin can be paid right now (deposits are paused at the exchange). Try later."
    ),
    "app_invoice": "{plan} · invoice {id}",
    "app_send_exactly": "Send exactly",
    "app_address": "Address",
    "app_network": "Network",
    "app_memo": "Memo / tag (the deposit is lost without it)",
    "app_copy": "Copy",
    "app_copied": "Copied",
    "app_fee_warning": (
        "Send exactly this amount, on {network} only. Paying from an exchange? It takes its "
        "withdrawal fee out of the amount you send, so make sure the amount that ARRIVES is "
        "exactly {amount} {coin}."
    ),
    "app_expires_in": "Pay within {time}",
    "app_state_pending": "Waiting for your payment…",
    "app_state_processing": "Payment seen: confirming on the network…",
    "app_state_partial": "Part received. Send {topup} {coin} more to the same address.",
    "app_state_paid": "Paid",
    "app_state_expired": "Expired: this invoice can no longer be paid. Start a new one.",
    "app_state_cancelled": "Cancelled",
    "app_state_invalid": "Closed",
    "app_paid_until": "Your {plan} is active until {until}.",
    "app_paid_activating": "Your {plan} is active.",
    "app_check": "Check payment",
    "app_i_paid": "I paid: claim it",
    "app_claim_hint": "Transaction hash or OKX withdrawal id",
    "app_claim_send": "Claim",
    "app_claim_sent": "Sent: we are checking it.",
    "app_cancel": "Cancel invoice",
    "app_join": "Join {title}",
    "app_join_chat": "Join the chat",
    "app_subscriptions": "Subscriptions",
    "app_sub_until": "{plan}: until {until}",
    "app_sub_ended": "{plan}: ended {until}",
    "app_no_subscriptions": "No subscription yet.",
    "app_open_invoices": "Open invoices",
    "app_resume": "Resume",
    "app_history": "Payments",
    "app_no_history": "No payment yet.",
    "app_tx": "Tx {tx}",
    "app_error": "Something went wrong. Try again.",
    "app_stars_waiting": "Waiting for Telegram to confirm the payment…",
    "app_new_invoice": "Start a new invoice",
    "app_auth_failed": "This page could not sign you in. Close it and open it again from the bot.",
}
