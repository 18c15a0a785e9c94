"""Russian: a partial translation; missing keys fall back to English."""

MESSAGES: dict[str, str] = {
    "welcome": (
        "<b>Добро пожаловать!</b> Выберите тариф. Оплата криптовалютой напрямую на счёт "
        "магазина в OKX; подписка начнётся, как только придёт платёж."
    ),
    "plans_title": "<b>Тарифы</b>",
    "plan_button": "{name} · {price} / {days} дн.",
    "choose_coin": "<b>{plan}</b>: {price} за {days} дн.\nЧем будете платить?",
    "button_back": "« Назад",
    "button_plans": "Тарифы",
    "button_renew": "Продлить {plan}",
    "command_start": "Тарифы и ваша подписка",
    "command_plans": "Выбрать тариф",
    "command_status": "Ваша подписка",
    "command_history": "Ваши счета",
    "command_cancel": "Отменить открытый счёт",
    "command_help": "Как оплатить",
    "button_check": "🔄 Проверить оплату",
    "button_claim": "🧾 Я оплатил",
    "button_cancel": "✖️ Отменить",
    "banner_paid": "✅ <b>ОПЛАЧЕНО</b>: спасибо! Не оплачивайте этот счёт повторно.\n\n",
    "banner_expired": "⛔ <b>СЧЁТ ИСТЁК - не оплачивайте</b>\n\n",
    "status_none": "У вас нет активной подписки. Выберите тариф: /plans",
    "unknown": "Не понял. /help покажет, что я умею.",
    "error_generic": "Что-то пошло не так. Попробуйте ещё раз через минуту.",
    "stale_button": "Эта кнопка больше не действует.",
    "not_yours": "Это не ваш счёт.",
    "admin_only": "Эта команда только для администраторов магазина.",
}
