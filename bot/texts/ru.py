"""Russian: a partial translation; missing keys fall back to English."""

MESSAGES: dict[str, str] = {
    "welcome": (
        "<b>Добро пожаловать!</b> Выберите тариф. Оплата криптовалютой напрямую на счёт "
        "магазина в OKX; подписка начнётся, как только придёт платёж."
    ),
    "welcome_stars": (
        "<b>Добро пожаловать!</b> Выберите тариф. Оплата в Telegram Stars прямо в Telegram; "
        "подписка начнётся, как только придёт платёж."
    ),
    "welcome_both": (
        "<b>Добро пожаловать!</b> Выберите тариф. Оплата криптовалютой напрямую на счёт "
        "магазина в OKX или в Telegram Stars; подписка начнётся, как только придёт платёж."
    ),
    "plans_title": "<b>Тарифы</b>",
    "plan_button": "{name} · {price} / {days} дн.",
    "choose_coin": "<b>{plan}</b>: {price} за {days} дн.\nЧем будете платить?",
    "choose_stars": "<b>{plan}</b>: {price} за {days} дн.\nОплата в Telegram Stars.",
    "help_stars": (
        "<b>Как это работает</b>\n"
        "1. /plans: выберите тариф и нажмите ⭐ Telegram Stars.\n"
        "2. Оплатите счёт в Stars в Telegram.\n"
        "3. Подписка начнётся сразу. Тариф на 30 дней Telegram продлевает каждые 30 дней, "
        "пока вы не отключите это в /status.\n\n"
        "/status: ваша подписка · /history: ваши платежи\n"
        "/paysupport: помощь с оплатой · /terms: условия продажи"
    ),
    "button_back": "« Назад",
    "button_plans": "Тарифы",
    "button_checkout_menu": "Оплата",
    "button_open_checkout": "Открыть оплату",
    "button_renew": "Продлить {plan}",
    "command_start": "Тарифы и ваша подписка",
    "command_plans": "Выбрать тариф",
    "command_status": "Ваша подписка",
    "command_history": "Ваши счета",
    "history_stars_line": (
        "{date} · <code>{payment}</code> · {plan} · ⭐ {stars} Stars · {status}{renewal}"
    ),
    "history_stars_renewal": " · продление",
    "status_refunded": "возвращён",
    "command_cancel": "Отменить открытый счёт",
    "command_help": "Как оплатить",
    "command_paysupport": "Помощь с оплатой",
    "command_terms": "Условия продажи",
    "terms_default": (
        "<b>Условия продажи</b>\n"
        "<b>Что вы покупаете:</b> доступ к выбранному тарифу на указанное в нём число дней. "
        "Доступ начинается, когда приходит платёж; продление, оплаченное заранее, начинается "
        "после окончания текущего периода. Это цифровая услуга: ничего не доставляется.\n"
        "<b>Оплата:</b> криптовалютой, ровно та сумма, что указана в счёте, в указанной в нём "
        "сети, до истечения счёта; или в Telegram Stars, если тариф это предлагает. Криптоплатёж, "
        "пришедший не полностью, с опозданием или дважды, рассматривают администраторы "
        "магазина: они засчитывают его или оформляют возврат.\n"
        "<b>Продление:</b> криптоплатёж сам не продлевается: перед окончанием доступа вы "
        "получите напоминание и продлите его, оплатив новый счёт. Подписку в Telegram Stars "
        "Telegram продлевает каждые 30 дней, пока вы не отключите это в /status.\n"
        "<b>Возвраты:</b> администраторы магазина решают каждый случай (например, платёж, "
        "отправленный дважды, или доступ, который не был предоставлен). Криптовалюту "
        "возвращают на указанный вами адрес за вычетом комиссии сети; Stars возвращаются через "
        "Telegram, и оплаченное ими время заканчивается. Уже использованное время не "
        "возвращается.\n"
        "<b>Вопросы об оплате:</b> /paysupport"
    ),
    "terms_merchant": ("<b>Условия продажи</b>\n{text}{link}\n\nВопросы об оплате: /paysupport"),
    "terms_link": "\n\nПолные условия: {url}",
    "terms_url_only": (
        "<b>Условия продажи</b>\nУсловия магазина: {url}\n\nВопросы об оплате: /paysupport"
    ),
    "paysupport_contact": (
        "💬 С вопросами об оплате пишите: {contact}. Укажите номер счёта (он есть в /history) "
        "и, если вы уже оплатили, хеш транзакции."
    ),
    "paysupport_told": (
        "🔔 Администраторам магазина сообщили, что вам нужна помощь с оплатой; они напишут вам "
        "здесь."
    ),
    "paysupport_blocked": "Этот магазин не принимает обращения с вашего аккаунта.",
    "alert_support": (
        '🆘 /paysupport от <a href="tg://user?id={customer}">{who}</a> (id '
        "<code>{customer}</code>{username}). Последние счета:\n{invoices}\n"
        "/user {customer} покажет подписки."
    ),
    "alert_support_username": ", @{username}",
    "alert_support_invoice": (
        "<code>{invoice}</code> · {plan} · {amount} {coin} · {status} · {date}"
    ),
    "alert_support_no_invoices": "нет",
    "alert_support_unnamed": "покупатель",
    "button_check": "🔄 Проверить оплату",
    "button_claim": "🧾 Я оплатил",
    "button_cancel": "✖️ Отменить",
    "banner_paid": "✅ <b>ОПЛАЧЕНО</b>: спасибо! Не оплачивайте этот счёт повторно.\n\n",
    "banner_expired": "⛔ <b>СЧЁТ ИСТЁК - не оплачивайте</b>\n\n",
    "status_none": "У вас нет активной подписки. Выберите тариф: /plans",
    "unknown": "Не понял. /help покажет, что я умею.",
    "error_crypto_unavailable": (
        "Оплата криптовалютой сейчас недоступна. Пожалуйста, попробуйте позже."
    ),
    "error_crypto_unavailable_stars": (
        "Оплата криптовалютой сейчас недоступна. Можно оплатить в Telegram Stars."
    ),
    "error_generic": "Что-то пошло не так. Попробуйте ещё раз через минуту.",
    "stale_button": "Эта кнопка больше не действует.",
    "not_yours": "Это не ваш счёт.",
    "admin_only": "Эта команда только для администраторов магазина.",
    # --- тестовый режим (OKX_MODE=simulated) ----------------------------------------------------
    "app_test_banner": "🧪 ТЕСТОВЫЙ РЕЖИМ: репетиция, не настоящий счёт и не настоящий платёж.",
    "test_banner": (
        "🧪 <b>ТЕСТОВЫЙ РЕЖИМ</b>: репетиция, не настоящий счёт и не настоящий платёж.\n\n"
    ),
    "admin_usage_simulate": (
        "Использование: /simulate_deposit &lt;счёт&gt; [сумма] (по умолчанию точная сумма счёта)"
    ),
    "admin_simulate_live": (
        "/simulate_deposit работает только в тестовом режиме (OKX_MODE=simulated). Этот "
        "магазин принимает настоящие платежи через OKX: ничего не изменилось."
    ),
    "admin_simulate_bad_amount": (
        "Это не сумма: <code>{amount}</code>. Напишите положительное число, например 29.5 или "
        "29.0012. Ничего не изменилось."
    ),
    "admin_simulated": (
        "🧪 ТЕСТ: смоделирован платёж <code>{amount}</code> {coin} в сети {network} на счёт "
        "<code>{invoice}</code> (tx <code>{tx}</code>). Проверка платежей зачтёт его как "
        "настоящий; проверяю сейчас."
    ),
    # --- Telegram Stars ------------------------------------------------------------------------
    "button_stars": "⭐ Telegram Stars",
    "button_pay_stars": "Оплатить ⭐ {stars}",
    "stars_invoice_description": "{plan}: доступ на {days} дн. Счёт {invoice}.",
    "stars_subscription_description": (
        "{plan}: доступ на 30 дней, Telegram продлевает его каждые 30 дней, пока вы не "
        "отключите продление. Счёт {invoice}."
    ),
    "stars_subscription_offer": (
        "<b>{plan}</b>: ⭐ {stars} каждые 30 дней, Telegram продлевает подписку, пока вы её не "
        "отключите (/status). Нажмите кнопку, чтобы оплатить."
    ),
    "stars_unavailable": "Оплата Telegram Stars сейчас недоступна. Попробуйте чуть позже.",
    "stars_refused_unknown": "Этот счёт выставлен не магазином. Выберите тариф заново: /plans",
    "stars_refused_not_yours": "Этот счёт выставлен другому человеку. Выберите тариф: /plans",
    "stars_refused_expired": "Срок счёта истёк. Выберите тариф снова, чтобы получить новый.",
    "stars_refused_paid": "Этот счёт уже оплачен. Не оплачивайте его повторно.",
    "stars_refused_plan_gone": "Этот тариф больше не продаётся. Выберите другой: /plans",
    "stars_refused_price_changed": (
        "Цена изменилась. Выберите тариф снова, чтобы получить новый счёт."
    ),
    "stars_paid": "⭐ Оплата получена: {stars} Stars. <b>{plan}</b> активен до {until}.",
    "stars_paid_subscription": (
        "⭐ Оплата получена: {stars} Stars. <b>{plan}</b> активен до {until}. Telegram "
        "продлевает подписку каждые 30 дней за {stars} Stars; отключить можно в /status."
    ),
    "stars_renewed": "⭐ <b>{plan}</b> продлён ({stars} Stars): активен до {until}.",
    "stars_refunded": (
        "↩️ Ваши {stars} Stars за <b>{plan}</b> возвращены, оплаченное ими время отменено."
    ),
    "stars_renewal_line": "⭐ Telegram продлевает <b>{plan}</b> каждые 30 дней за {stars} Stars.",
    "stars_renewal_off_line": "⭐ Продление <b>{plan}</b> отключено: подписка закончится {until}.",
    "button_renewal_off": "Отключить продление {plan}",
    "button_renewal_on": "Снова продлевать {plan} каждые 30 дней",
    "stars_renewal_now_off": "Продление <b>{plan}</b> отключено. Подписка активна до {until}.",
    "stars_renewal_now_on": "Telegram снова будет продлевать <b>{plan}</b> каждые 30 дней.",
    "stars_renewal_failed": "Telegram не изменил продление: {reason}. Попробуйте позже.",
    # --- Mini App -------------------------------------------------------------------------
    "app_outside": "Откройте эту страницу из бота в Telegram.",
    "app_loading": "Загрузка…",
    "app_tab_plans": "Тарифы",
    "app_tab_account": "Мой аккаунт",
    "app_choose_plan": "Выберите тариф",
    "app_plan_days": "{days} дн.",
    "app_plan_chats": "Доступ: {chats}",
    "app_plan_chat_count": "Доступ к закрытым чатам: {count}",
    "app_plan_renews": "За Telegram Stars: продлевается каждые 30 дней, пока вы не отключите",
    "app_choose_coin": "{plan}: какой монетой будете платить?",
    "app_choose_network": (
        "В какой сети отправите {coin}? Выберите ту, в которой отправляет ваш кошелёк или "
        "биржа: платёж в другой сети может потеряться."
    ),
    "app_pay_stars": "Оплатить ⭐ {stars}",
    "app_no_coins": (
        "Сейчас ни одну монету принять нельзя (депозиты на бирже приостановлены). Попробуйте позже."
    ),
    "app_invoice": "{plan} · счёт {id}",
    "app_send_exactly": "Отправьте ровно",
    "app_address": "Адрес",
    "app_network": "Сеть",
    "app_memo": "Memo / тег (без него депозит потеряется)",
    "app_copy": "Копировать",
    "app_copied": "Скопировано",
    "app_fee_warning": (
        "Отправьте ровно эту сумму и только в сети {network}. Платите с биржи? Она вычтет свою "
        "комиссию за вывод из отправляемой суммы: убедитесь, что ДОЙДЁТ ровно {amount} {coin}."
    ),
    "app_expires_in": "Оплатите в течение {time}",
    "app_state_pending": "Ждём ваш платёж…",
    "app_state_processing": "Платёж виден: ждём подтверждений сети…",
    "app_state_partial": "Получена часть. Отправьте ещё {topup} {coin} на тот же адрес.",
    "app_state_paid": "Оплачено",
    "app_state_expired": "Срок истёк: этот счёт больше не оплатить. Создайте новый.",
    "app_state_cancelled": "Отменён",
    "app_state_invalid": "Закрыт",
    "app_paid_until": "Ваш {plan} активен до {until}.",
    "app_paid_activating": "Ваш {plan} активен.",
    "app_check": "Проверить оплату",
    "app_i_paid": "Я оплатил: заявить",
    "app_claim_hint": "Хеш транзакции или ID вывода OKX",
    "app_claim_send": "Отправить",
    "app_claim_sent": "Отправлено: проверяем.",
    "app_cancel": "Отменить счёт",
    "app_join": "Вступить: {title}",
    "app_join_chat": "Вступить в чат",
    "app_subscriptions": "Подписки",
    "app_sub_until": "{plan}: до {until}",
    "app_sub_ended": "{plan}: закончилась {until}",
    "app_no_subscriptions": "Подписок пока нет.",
    "app_open_invoices": "Открытые счета",
    "app_resume": "Продолжить",
    "app_history": "Платежи",
    "app_no_history": "Платежей пока нет.",
    "app_tx": "Tx {tx}",
    "app_error": "Что-то пошло не так. Попробуйте ещё раз.",
    "app_stars_waiting": "Ждём подтверждения платежа от Telegram…",
    "app_new_invoice": "Создать новый счёт",
    "app_auth_failed": "Не удалось вас опознать. Закройте страницу и откройте её снова из бота.",
}
