"""Russian: the complete catalogue, key for key as in English (a test checks that every key is
here and uses exactly the English template's fields)."""

MESSAGES: dict[str, str] = {
    # --- menu ----------------------------------------------------------------------------------
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
    "plan_line": "<b>{name}</b>: {price} за {days} дн. {description}",
    "plan_button": "{name} · {price} / {days} дн.",
    "current_subscription": (
        "Ваш тариф <b>{plan}</b> активен до {until} (осталось дней: {days_left})."
    ),
    "choose_coin": "<b>{plan}</b>: {price} за {days} дн.\nЧем будете платить?",
    "choose_network": (
        "В какой сети вы отправите <b>{coin}</b>? Выберите ту, в которой отправляет ваш кошелёк "
        "или биржа: платёж в другой сети может потеряться."
    ),
    "choose_stars": "<b>{plan}</b>: {price} за {days} дн.\nОплата в Telegram Stars.",
    "no_coins": (
        "Сейчас ни одну монету принять нельзя (депозиты на бирже приостановлены). Попробуйте позже."
    ),
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
    "stars_invoice_title": "{plan}",
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
    "button_back": "« Назад",
    "button_plans": "Тарифы",
    "button_checkout_menu": "Оплата",
    "button_open_checkout": "Открыть оплату",
    "button_renew": "Продлить {plan}",
    # the command menu (plain text, at most 256 characters each)
    "command_start": "Тарифы и ваша подписка",
    "command_plans": "Выбрать тариф",
    "command_status": "Ваша подписка",
    "command_history": "Ваши счета",
    "command_cancel": "Отменить открытый счёт",
    "command_help": "Как оплатить",
    "command_paysupport": "Помощь с оплатой",
    "command_terms": "Условия продажи",
    # --- the invoice ---------------------------------------------------------------------------
    "invoice_caption": (
        "{banner}<b>{plan}</b>: {days} дн., {price}\n"
        "Отправьте ровно: <code>{amount}</code> {coin}\n"
        "Сеть: <b>{network}</b>\n"
        "{tag_line}"
        "Адрес: <code>{address}</code>\n"
        "Оплатить до: {expires}\n"
        "\n"
        "⚠️ Отправьте ровно эту сумму и только в сети {network}. Платите с биржи? Она вычтет "
        "свою комиссию за вывод из отправляемой суммы{fee_example}, поэтому убедитесь, что "
        "ДОЙДЁТ ровно {amount} {coin}.\n"
        "Счёт <code>{invoice}</code>"
    ),
    "invoice_tag_line": "⚠️ MEMO / ТЕГ (обязательно): <code>{tag}</code>\n",
    "invoice_fee_example": " (OKX берёт {fee} {coin} в этой сети)",
    "invoice_image_amount": "{amount} {coin}",
    "invoice_image_network": "{network}",
    "invoice_reused": "У вас уже открыт такой счёт: вот он ещё раз.",
    "banner_paid": "✅ <b>ОПЛАЧЕНО</b>: спасибо! Не оплачивайте этот счёт повторно.\n\n",
    "banner_expired": "⛔ <b>СЧЁТ ИСТЁК - не оплачивайте</b>\n\n",
    "banner_cancelled": "⛔ <b>СЧЁТ ОТМЕНЁН - не оплачивайте</b>\n\n",
    "banner_closed": "⛔ <b>СЧЁТ ЗАКРЫТ - не оплачивайте</b>\n\n",
    "banner_partial": (
        "⚠️ <b>ПОЛУЧЕНА ЧАСТЬ</b>: теперь отправьте ровно <code>{topup}</code> {coin} на тот же "
        "адрес, а не сумму ниже.\n\n"
    ),
    "button_check": "🔄 Проверить оплату",
    "button_claim": "🧾 Я оплатил",
    "button_cancel": "✖️ Отменить",
    # --- checking, claiming, cancelling ---------------------------------------------------------
    "check_pending": (
        "По счёту {invoice} пока ничего не пришло. Платёж появляется примерно через минуту "
        "после того, как сеть его подтвердит; я вам напишу."
    ),
    "check_processing": "Ваш платёж по счёту {invoice} виден; ждём подтверждений сети.",
    "check_partial": (
        "По счёту {invoice} пришла часть платежа; пожалуйста, доплатите ещё {topup} {coin}."
    ),
    "check_paid": "Счёт {invoice} оплачен. Спасибо!",
    "check_closed": "Счёт {invoice} закрыт ({status}). Не оплачивайте его.",
    "check_review": "Платёж по счёту {invoice} проверяет администратор; ответ придёт сюда.",
    "claim_prompt": (
        "Отправьте мне <b>хеш транзакции (TXID)</b> вашего платежа по счёту "
        "<code>{invoice}</code>.\n"
        "Платили внутренним переводом с аккаунта OKX? Тогда отправьте <b>ID вывода OKX</b> "
        "(в OKX: Активы › История › Вывод)."
    ),
    "claim_attached": "Нашёл: этот платёж теперь зачтён по счёту {invoice}. {outcome}",
    "claim_attached_paid": "Подписка активируется; вы получите сообщение.",
    "claim_attached_waiting": "Платёж ждёт подтверждений сети; я вам напишу.",
    "claim_not_found": (
        "Платёж с таким идентификатором пока не поступил на счёт магазина. Я ещё раз запросил "
        "биржу; если платёж свежий, отправьте идентификатор снова через несколько минут."
    ),
    "claim_admin": "Я передал это на проверку администратору; ответ придёт сюда.",
    "claim_bad_reference": (
        "Это не похоже на хеш транзакции или ID вывода. Отправьте только хеш, "
        "например 0x3f2a… или код из 64 символов."
    ),
    "claim_rejected": "Этот платёж нельзя зачесть по счёту {invoice}: {reason}",
    "claim_reason_already_attached": "он уже оплатил другой счёт.",
    "claim_reason_other_currency": "он в другой монете.",
    "claim_reason_older_than_invoice": "он сделан до того, как был создан этот счёт.",
    "claim_reason_after_invoice_window": (
        "он пришёл после того, как счёт перестал принимать платежи."
    ),
    "claim_reason_blocked": (
        "этот магазин не принимает заявки с вашего аккаунта; обратитесь в поддержку."
    ),
    "claim_reason_invoice_closed": "статус счёта: {status}.",
    "claim_reason_other": (
        "он не подходит к этому счёту. Администраторы видят каждый платёж, пришедший без "
        "совпадения, и могут вручную зачесть его по вашему счёту."
    ),
    "claim_rate_limited": (
        "За последний час вы отправили много идентификаторов платежей. Пожалуйста, попробуйте "
        "позже. Администраторы видят каждый платёж, пришедший без совпадения, и могут зачесть "
        "его по вашему счёту."
    ),
    "claim_expired": "Я больше не жду идентификатор платежа. Нажмите «Я оплатил» ещё раз.",
    "cancel_done": "Счёт {invoice} отменён. Не оплачивайте его.",
    "cancel_refused": "Счёт {invoice} нельзя отменить: {reason}",
    "cancel_reason_received": "платёж по нему уже виден.",
    "cancel_reason_closed": "его статус: {status}.",
    "cancel_none": "У вас нет открытых счетов, которые можно отменить.",
    "cancel_pick": "Какой счёт отменить?",
    "cancel_button": "Отменить {invoice} ({amount} {coin})",
    # --- creating an invoice fails --------------------------------------------------------------
    "error_prices": "Цены сейчас недоступны. Пожалуйста, попробуйте через минуту.",
    "error_crypto_unavailable": (
        "Оплата криптовалютой сейчас недоступна. Пожалуйста, попробуйте позже."
    ),
    "error_crypto_unavailable_stars": (
        "Оплата криптовалютой сейчас недоступна. Можно оплатить в Telegram Stars."
    ),
    "error_paused": (
        "Депозиты {coin} в сети {network} на бирже приостановлены. Выберите другой вариант."
    ),
    "error_below_minimum": (
        "Этот тариф стоит меньше минимального депозита биржи для {coin} в сети {network}. "
        "Пожалуйста, выберите другую монету или сеть."
    ),
    "error_busy": "Магазин сейчас очень загружен. Пожалуйста, попробуйте через несколько минут.",
    "error_too_many": (
        "Открытых счетов у вас: {limit}. Сначала оплатите или отмените один из них (/cancel)."
    ),
    "error_rate_limited": "За последний час вы создали много счетов. Пожалуйста, попробуйте позже.",
    "error_too_many_held": (
        "Ваши недавние счета, даже отменённые, ещё какое-то время удерживают свои суммы оплаты. "
        "Пожалуйста, оплатите один из них или попробуйте позже."
    ),
    "error_blocked": (
        "Вы не можете создавать счета в этом магазине. Пожалуйста, обратитесь в его поддержку."
    ),
    "error_unknown_choice": "Этот вариант больше не предлагается. /plans покажет доступные.",
    "error_generic": "Что-то пошло не так. Попробуйте ещё раз через минуту.",
    "stale_button": "Эта кнопка больше не действует.",
    "not_yours": "Это не ваш счёт.",
    # --- the JSON API (sent as plain text: tags stripped, entities unescaped) -------------------
    "api_instructions": (
        "Отправьте ровно {amount} {coin} в сети {network} на адрес {address}{tag_part} до "
        "{expires}. Биржи вычитают свою комиссию за вывод из отправляемой суммы: дойти должна "
        "ровно эта сумма."
    ),
    "api_instructions_topup": (
        "Пришла часть платежа. Теперь отправьте ровно {topup} {coin} в сети {network} на адрес "
        "{address}{tag_part} до {expires}: именно эту сумму, а не исходную."
    ),
    "api_instructions_tag": " с MEMO/ТЕГОМ {tag} (обязательно)",
    # --- account ---------------------------------------------------------------------------------
    "status_none": "У вас нет активной подписки. Выберите тариф: /plans",
    "status_line": "<b>{plan}</b>: активен до {until} (осталось дней: {days_left})",
    "status_expired_line": "<b>{plan}</b>: закончился {until}",
    "status_title": "<b>Ваши подписки</b>",
    "history_none": "Счетов пока нет. Выберите тариф: /plans",
    "history_title": "<b>Ваши последние счета</b>",
    "history_line": "{date} · <code>{invoice}</code> · {plan} · {amount} {coin} · {status}{tx}",
    "history_tx": "\n   tx <code>{tx}</code>",
    "history_stars_line": (
        "{date} · <code>{payment}</code> · {plan} · ⭐ {stars} Stars · {status}{renewal}"
    ),
    "history_stars_renewal": " · продление",
    "status_refunded": "возвращён",
    "status_pending": "ожидает оплаты",
    "status_processing": "платёж виден, подтверждается",
    "status_paid": "оплачен",
    "status_expired": "истёк",
    "status_cancelled": "отменён",
    "status_invalid": "закрыт",
    "help": (
        "<b>Как это работает</b>\n"
        "1. /plans: выберите тариф, монету и сеть.\n"
        "2. Отправьте ровно указанную сумму на указанный адрес в этой сети.\n"
        "3. Подписка начнётся, когда придёт платёж (обычно в течение нескольких минут).\n\n"
        "/status: ваша подписка · /history: ваши счета · /cancel: отменить открытый счёт\n"
        "Оплатили, а ничего не произошло? Нажмите «Я оплатил» под счётом и отправьте хеш "
        "транзакции.\n"
        "/paysupport: помощь с оплатой · /terms: условия продажи"
    ),
    "help_stars": (
        "<b>Как это работает</b>\n"
        "1. /plans: выберите тариф и нажмите ⭐ Telegram Stars.\n"
        "2. Оплатите счёт в Stars в Telegram.\n"
        "3. Подписка начнётся сразу. Тариф на 30 дней Telegram продлевает каждые 30 дней, "
        "пока вы не отключите это в /status.\n\n"
        "/status: ваша подписка · /history: ваши платежи\n"
        "/paysupport: помощь с оплатой · /terms: условия продажи"
    ),
    # --- Telegram's rules for bots that sell: /terms and /paysupport ---------------------------
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
    "unknown": "Не понял. /help покажет, что я умею.",
    # --- chat access (channels and groups a plan grants) ---------------------------------------
    "access_invite": (
        "🔑 Ваш тариф <b>{plan}</b> включает <b>{chat}</b>. Вступите по этой ссылке: она "
        "пропускает одного человека (вас) и действует до {until}.\n{link}"
    ),
    "access_invite_replaced": (
        "⚠️ Вашей ссылкой-приглашением в <b>{chat}</b> воспользовался кто-то другой; его "
        "удалили. Вот новая ссылка, только для вас (не делитесь ею), она действует до "
        "{until}:\n{link}"
    ),
    "access_join_button": "Вступить в {chat}",
    "access_removed": (
        "Ваша подписка <b>{plan}</b> закончилась {ended}, поэтому вас удалили из "
        "<b>{chat}</b>. Продлите её, чтобы вернуться:"
    ),
    "join_on_the_way": "🔑 Новые ссылки-приглашения уже в пути ({count}).",
    "join_all_joined": "Вы уже состоите во всех чатах, которые включает ваша подписка.",
    "join_nothing": "Ни одна из ваших действующих подписок не включает канал или группу.",
    "command_join": "Ссылки-приглашения в ваши платные чаты",
    "members_usage": "Использование: /members &lt;тариф&gt; (тарифы с чатами: {plans})",
    "members_none": (
        "Ни один тариф не даёт доступ к чату. Добавьте <code>chats = [...]</code> к тарифу в "
        "файле тарифов."
    ),
    "members_chat": (
        "<b>{chat}</b> (<code>{chat_id}</code>): участников: {members}, приглашено: {invited}"
    ),
    "members_next": "  {customer}: до {until}",
    "alert_access_failing": (
        "🚫 Не удаётся выполнить «{action}» в <b>{chat}</b> (<code>{chat_id}</code>): {error}\n"
        "Сделайте бота администратором там, с правами приглашать пользователей и блокировать "
        "участников. Бот продолжает попытки."
    ),
    "alert_chat_rights": "🚫 Бот не может управлять своими платными чатами:\n{problems}",
    # --- progress messages (from the outbox) ----------------------------------------------------
    "payment_detected": (
        "💡 Виден платёж {received} {coin} по счёту {invoice}. Ждём подтверждений сети; я "
        "напишу, когда всё будет готово."
    ),
    "payment_partial": (
        "Пришла часть платежа по счёту {invoice}: {received} {coin}. "
        "{shortfall_line}Чтобы завершить оплату, отправьте <code>{topup}</code> {coin} на тот же "
        "адрес в сети {network}, ровно эту сумму, до {until}."
    ),
    "payment_shortfall": "Не хватает ещё примерно {shortfall} {coin}. ",
    "invoice_paid": "✅ Оплата по счёту {invoice} получена. <b>{plan}</b> активен до {until}.",
    "invoice_paid_no_end": "✅ Оплата по счёту {invoice} получена. Спасибо!",
    "invoice_expired": (
        "Срок счёта {invoice} истёк. Больше не оплачивайте его; выберите тариф снова, чтобы "
        "получить новый."
    ),
    "payment_partial_expired": (
        "Счёт {invoice} закрылся раньше, чем пришла оставшаяся часть платежа. Администратор "
        "посмотрит, что вы заплатили, и свяжется с вами здесь."
    ),
    "payment_late_review": (
        "Платёж по счёту {invoice} пришёл после истечения его срока. Администратор проверит "
        "его; ответ придёт сюда."
    ),
    "payment_on_hold": (
        "Биржа задержала платёж по счёту {invoice} для проверки. Администратору сообщили; ответ "
        "придёт сюда."
    ),
    "invoice_rejected": "Счёт {invoice} закрыт администратором. Не оплачивайте его.",
    "invoice_revoked": (
        "Администратор перенёс или вернул платёж, записанный на счёт {invoice}, поэтому "
        "оплаченное им время отменено. Ответьте здесь, если считаете это ошибкой."
    ),
    "subscription_reminder": (
        "⏰ Ваш тариф <b>{plan}</b> заканчивается {until} (осталось дней: {days}). Продлите его "
        "сейчас, чтобы не потерять доступ: новый период начнётся, когда закончится текущий."
    ),
    "subscription_expired": (
        "Ваша подписка <b>{plan}</b> закончилась. Продлить её можно в любой момент:"
    ),
    "subscription_granted": (
        "🎁 Вам начислено {days} дн. тарифа <b>{plan}</b>: он активен до {until}."
    ),
    # --- admins --------------------------------------------------------------------------------
    "admin_only": "Эта команда только для администраторов магазина.",
    "admin_usage_confirm": (
        "Использование: /confirm &lt;id счёта&gt; [id депозита или хеш транзакции]"
    ),
    "admin_usage_reject": "Использование: /reject &lt;id счёта&gt;",
    "admin_usage_reassign": (
        "Использование: /reassign &lt;id депозита или хеш транзакции&gt; &lt;id счёта&gt;"
    ),
    "admin_usage_refunded": "Использование: /refunded &lt;id депозита или хеш транзакции&gt;",
    "admin_usage_user": "Использование: /user &lt;telegram_id&gt;",
    "admin_usage_grant": "Использование: /grant &lt;telegram_id&gt; &lt;тариф&gt; [дни]",
    "admin_usage_block": "Использование: /block &lt;telegram_id&gt;",
    "admin_usage_unblock": "Использование: /unblock &lt;telegram_id&gt;",
    "admin_blocked": (
        "Покупатель <code>{customer}</code> заблокирован: новых счетов и заявок от него не "
        "будет. Отменено открытых счетов: {cancelled}; сумм оплаты его счетов, по которым "
        "ничего не пришло, освобождено для других покупателей: {freed}. Если он всё же оплатит "
        "одну из этих сумм, платёж может закрыть чужой счёт: верните его вручную и запишите "
        "через /refunded. /unblock {customer} снимает блокировку (освобождённые суммы не "
        "возвращаются)."
    ),
    "admin_unblocked": "Покупатель <code>{customer}</code> снова может покупать.",
    "admin_not_blocked": "Покупатель <code>{customer}</code> не был заблокирован.",
    "admin_refused": "Не выполнено: {reason}",
    "admin_confirm_without_deposit": (
        "Подтвердить счёт <code>{invoice}</code> БЕЗ депозита? Это активирует {plan} для "
        "покупателя {customer}, хотя платёж не записан."
    ),
    "admin_button_force": "Да, подтвердить без депозита",
    "admin_confirmed": (
        "Счёт <code>{invoice}</code> оплачен (отмечен вручную). Подписка до {until}."
    ),
    "admin_rejected": "Счёт <code>{invoice}</code> отклонён; покупателю сообщили.",
    "admin_reassigned": (
        "Депозит перенесён на счёт <code>{invoice}</code>, теперь он оплачен. Подписка до {until}."
    ),
    "admin_refunded_done": "Депозит <code>{deposit}</code> записан как возвращённый.",
    "admin_granted": (
        "Покупателю {customer} начислено {days} дн. тарифа {plan}: активен до {until}."
    ),
    "admin_pending_title": "<b>Ожидают решения</b> (страница {page} из {pages}, сначала новые)",
    "admin_pending_empty": "Ничего не ожидает решения. 🎉",
    "admin_crypto_off": (
        "Этот магазин продаёт только за Telegram Stars (ключи OKX не заданы): криптосчетов и "
        "депозитов для проверки нет. /refund возвращает платёж в Stars; /grant начисляет время "
        "вручную."
    ),
    "admin_pending_open": "<b>Открытые счета</b> ({total})",
    "admin_pending_review": "<b>Ждут проверки</b> ({total})",
    "admin_pending_unmatched": "<b>Депозиты без счёта</b> ({total})",
    "admin_invoice_line": (
        "<code>{invoice}</code> · {plan} · {amount} {coin} {network} · {status}{exceptions} · "
        "покупатель <code>{customer}</code> · {date}"
    ),
    "admin_deposit_line": (
        "<code>{deposit}</code> · {amount} {coin} ({chain}) · состояние {state} · {date}{tx}{hint}"
    ),
    "admin_deposit_hint": " · возможно, <code>{invoice}</code>",
    "admin_button_confirm": "✅ {invoice}",
    "admin_button_reject": "✖️ {invoice}",
    "admin_button_prev": "« Новее",
    "admin_button_next": "Старше »",
    "admin_stats": (
        "<b>Статистика</b>\nАктивных подписчиков: {active}\nДепозитов без счёта: {unmatched}\n"
        "Очередь отправки: {outbox}\n\n{windows}"
    ),
    "admin_stats_window": (
        "<b>За последние {window}</b>: оплачено {count}, ${usd}\n{plans}{coins}{stars}"
    ),
    "admin_stats_stars": (
        "  ⭐ Telegram Stars: оплачено {payments}, получено {stars} Stars, возвратов {refunds} "
        "({refunded} Stars), осталось {kept} Stars\n"
    ),
    "admin_stats_item": "  {name}: {value}\n",
    "admin_export": "Платежи с {first} по {last} (UTC): {count}.",
    "admin_export_empty": "Нет платежей с {first} по {last} (UTC).",
    "admin_export_usage": (
        "Использование: <code>/export [с] [по]</code>, даты в виде YYYY-MM-DD (UTC, оба дня "
        "включительно), например <code>/export 2026-01-01 2026-01-31</code>. Без дат: последние "
        "30 дней."
    ),
    "admin_user_unknown": "Покупателя {customer} нет.",
    "admin_user": (
        "<b>Покупатель</b> <code>{customer}</code> · язык {language} · {reachable} · с "
        "{since}\nОткрытых счетов: {open}\n{subscriptions}\n{invoices}{stars}"
    ),
    "admin_user_stars": "\n\n<b>Telegram Stars</b>\n{subscriptions}{payments}",
    "admin_user_stars_renews": (
        "⭐ Telegram продлевает <b>{plan}</b> каждые 30 дней за {stars} Stars (заказ "
        "<code>{order}</code>)\n"
    ),
    "admin_user_stars_renewal_off": (
        "⭐ Продление <b>{plan}</b> отключено (заказ <code>{order}</code>)\n"
    ),
    "admin_user_stars_line": (
        "<code>{payment}</code> · {plan} · ⭐ {stars} · {date} · заказ <code>{order}</code>"
        "{renewal}{refunded}"
    ),
    "admin_user_stars_renewal": " · продление",
    "admin_user_stars_refunded": " · возвращён {date}",
    "admin_user_stars_none": "Платежей в Stars нет.",
    "admin_reachable": "доступен",
    "admin_unreachable": "заблокировал бота",
    # --- merchant webhooks (/webhooks, /redeliver) ----------------------------------------------
    "webhooks_none": "URL вебхуков не настроены (MERCHANT_WEBHOOK_URLS).",
    "webhooks_title": "<b>Вебхуки</b>",
    "webhooks_url": (
        "<b>{url}</b>: доставлено {delivered} · ожидает {pending} · не доставлено {failed}"
        " · id <code>{id}</code>"
    ),
    "webhooks_problem": (
        "  #{delivery} {type} <code>{event}</code> · попыток: {attempts} · {outcome} · {when}"
    ),
    "webhooks_next": "следующая попытка {when}",
    "webhooks_gave_up": "попытки прекращены",
    "webhooks_hint": "/redeliver &lt;id доставки&gt; или /redeliver failed отправит снова.",
    "admin_usage_redeliver": "Использование: /redeliver &lt;id доставки&gt; или /redeliver failed",
    "redeliver_one": "Доставка #{delivery} уйдёт снова в течение нескольких секунд.",
    "redeliver_failed": ("Неудавшиеся доставки ({count}) уйдут снова в течение нескольких секунд."),
    "redeliver_unknown": "Нет доставки #{delivery} на настроенный URL вебхука.",
    "webhooks_gone_title": "⚠️ <b>Больше нет в MERCHANT_WEBHOOK_URLS</b>, но ещё ожидают:",
    "webhooks_gone_url": (
        "<b>{url}</b> · id <code>{id}</code>: ожидает {pending}, самая старая от {since}"
    ),
    "webhooks_gone_hint": (
        "/webhooks move &lt;старый id&gt; &lt;новый id&gt; отправит их на настроенный URL; "
        "/webhooks drop &lt;старый id&gt; отменит их."
    ),
    "admin_usage_webhooks": (
        "Использование: /webhooks, /webhooks move &lt;старый id&gt; &lt;новый id&gt; или "
        "/webhooks drop &lt;старый id&gt; (id такие, как их показывает /webhooks)"
    ),
    "webhooks_moved": (
        "Ожидающие доставки ({moved}) перенесены с {old} на {new}: они уйдут в течение "
        "нескольких секунд."
    ),
    "webhooks_moved_known": " Доставки, которые у {new} уже есть ({dropped}), отброшены.",
    "webhooks_dropped": "Ожидающие доставки на {old} ({count}) отменены.",
    "webhooks_unknown_old": (
        "Среди исчезнувших URL с ожидающими доставками нет id {id} (/webhooks покажет их). "
        "Ничего не изменено."
    ),
    "webhooks_unknown_new": (
        "В MERCHANT_WEBHOOK_URLS нет URL с id {id} (/webhooks покажет их). Ничего не изменено."
    ),
    # --- admin alerts (from the outbox) ------------------------------------------------------
    "alert_stars_paid": (
        "⭐ Оплата в Stars: {stars} Stars · {plan} · покупатель <code>{customer}</code> · "
        "платёж <code>{payment}</code>{renewal} · до {until}"
    ),
    "alert_stars_renewal": " (продление)",
    "alert_stars_refunded": (
        "↩️ Stars возвращены ({by}): платёж <code>{payment}</code> · {stars} Stars · {plan} · "
        "покупатель <code>{customer}</code> · теперь до {until}"
    ),
    "alert_stars_unmatched": (
        "❓ Платёж в Stars <code>{charge}</code> на {stars} Stars от покупателя "
        "<code>{customer}</code>: {reason}. Ничего не начислено; проверьте его в Telegram."
    ),
    # /refund (admins)
    "command_refund_usage": (
        "Использование: /refund &lt;id платежа, счёта или списания&gt;: возвращает платёж в "
        "Telegram Stars и отменяет то, что им оплачено."
    ),
    "refund_unknown": "Нет платежа в Telegram Stars с id {ref}. Ничего не изменено.",
    "refund_done": (
        "↩️ Покупателю <code>{customer}</code> возвращено {stars} Stars платежа "
        "<code>{payment}</code>; {plan} теперь заканчивается {until}."
    ),
    "refund_already": "Платёж <code>{payment}</code> уже был возвращён. Ничего не изменено.",
    "refund_found_refunded": (
        "По данным Telegram, платёж <code>{payment}</code> уже возвращён (не через бота): "
        "теперь это записано, а оплаченное им отменено."
    ),
    "refund_failed": "Telegram не вернул платёж <code>{payment}</code>: {reason}.",
    "alert_paid": (
        "💰 Оплачено: счёт <code>{invoice}</code> · {plan} · {amount} {coin} {network} · "
        "покупатель <code>{customer}</code>{exceptions} · до {until}"
    ),
    "alert_unmatched": (
        "❓ Депозит без счёта <code>{deposit}</code>: {amount} {coin} ({chain}){hint}. "
        "Решите в /pending."
    ),
    "alert_on_hold": (
        "🛑 OKX задерживает депозит <code>{deposit}</code> (состояние {state}){invoice_part}."
    ),
    "alert_frozen": "🧊 Счёт <code>{invoice}</code> заморожен: {reason}. Проверьте его в /pending.",
    "alert_duplicate": (
        "♻️ Второй платёж по счёту <code>{invoice}</code>: депозит <code>{deposit}</code> "
        "{amount} {coin}. Верните его или перенесите через /reassign."
    ),
    "alert_after_close": (
        "📬 Платёж по закрытому счёту <code>{invoice}</code>: депозит <code>{deposit}</code> "
        "{amount} {coin}. /confirm, /reassign или возврат."
    ),
    "alert_late": (
        "⏳ Поздний платёж по счёту <code>{invoice}</code>: {received} {coin}. "
        "/confirm {invoice} или /reject {invoice}."
    ),
    "alert_partial_unfinished": (
        "🧩 Незавершённая частичная оплата счёта <code>{invoice}</code>: {received} {coin} из "
        "{amount}. /confirm или возврат."
    ),
    "alert_topup_unavailable": (
        "🧩 Частичная оплата счёта <code>{invoice}</code> ({received} {coin}), но свободной "
        "суммы для доплаты не нашлось; решите в /pending."
    ),
    "alert_not_sold": (
        "🪙 Депозиты в монетах или сетях, которые этот магазин не продаёт ({kinds}): {count}, "
        "например <code>{deposit}</code>. Оставлены в /pending; никому не начислены."
    ),
    "alert_unsettled": (
        "⏳ Счёт <code>{invoice}</code>: {received} {coin} виден, но OKX не подтвердил его до "
        "конца окна оплаты{exceptions}. Счёт ещё будет оплачен, если OKX подтвердит; /pending."
    ),
    "alert_revoked": (
        "↩️ Счёт <code>{invoice}</code> больше не покрыт (осталось {received} {coin}, "
        "{reason}): его период отменён; теперь его статус: {status}. Остальное решите в /pending."
    ),
    "alert_claim_review": (
        "🧾 Заявка по счёту <code>{invoice}</code> требует решения (депозит {deposit}, {reason})."
    ),
    "alert_okx_auth": (
        "🔑 OKX отклонил API-ключ: депозиты не читаются, пока это не исправлено.\n"
        "Подробности: {error}"
    ),
    "alert_okx_down": "📡 OKX не отвечает с {since}: {error}. Повторяем при каждом опросе.",
    "alert_okx_recovered": "📡 OKX снова отвечает (сбой был с {since}); опрос возобновлён.",
    "alert_clock": (
        "🕒 Часы этого сервера расходятся с часами OKX на {offset} с. Настройте NTP на хосте."
    ),
    "alert_capacity": (
        "📉 Запас на исходе: {what} для {currency} {subject}: свободно {free} из {total}. {advice}"
    ),
    "alert_capacity_amounts": "Увеличьте AMOUNT_OFFSET_CAP_PERCENT или предложите другую сеть.",
    "alert_capacity_addresses": "Новые счета теперь делят адреса; добавьте адреса в OKX.",
    "alert_webhook_failed": (
        "🪝 Вебхук на {url} прекращён после 3 дней попыток: {event_type} <code>{event_id}</code> "
        "(доставка #{delivery_id}, попыток: {attempts}, последняя ошибка: {error}). /webhooks "
        "покажет неудачи; /redeliver failed отправит их снова."
    ),
    "alert_webhook_gone": (
        "🪝 Доставки вебхуков ({count}) всё ещё ждут отправки на URL, которых больше нет в "
        "MERCHANT_WEBHOOK_URLS:\n{urls}\n/webhooks move &lt;старый id&gt; &lt;новый id&gt; "
        "отправит их на настроенный URL; /webhooks drop &lt;старый id&gt; отменит их."
    ),
    "alert_unrenderable": (
        "⚠️ Сообщение очереди #{message_id} ({kind}, получатель: {audience}) не может быть "
        "показано этой версией бота: от него отказались. Разверните версию, которая его "
        "записала, или сообщите получателю вручную."
    ),
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
    "alert_generic": "ℹ️ {kind}: {details}",
    # --- Mini App page (bot/web/miniapp: plain text, {fields} filled by the page) ---------
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
