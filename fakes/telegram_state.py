"""The data behind the fake Telegram Bot API and the controls tests use to drive it (thread-safe).

The HTTP layer (:mod:`fakes.telegram`) calls :meth:`TelegramState.api` with parsed
parameters; tests call ``send_text`` / ``press`` / ... and read ``messages`` / ``requests`` / ...
from any thread. Refusals are :class:`ApiError` carrying Telegram's own descriptions.

Like Telegram: HTML is parsed strictly (an unescaped ``<`` or unknown tag is a 400) into
entities with UTF-16 offsets; an edit without ``reply_markup`` removes the inline keyboard;
text > 4096 / caption > 1024 / callback_data > 64 bytes are refused. Only HTML is parsed:
other parse modes keep ``plain`` equal to the raw text. Every PhotoSize of an upload serves
the original bytes.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from fakes.telegram_chats import CHAT_API, CHAT_METHODS, TelegramChats, update_allowed
from fakes.telegram_html import ApiError as ApiError
from fakes.telegram_html import bad_request as bad_request
from fakes.telegram_html import parse_html as parse_html
from fakes.telegram_html import utf16_len as utf16_len
from fakes.telegram_stars import STARS_API, STARS_METHODS, TelegramStars

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are"
    " exactly the same as a current content and reply markup of the message"
)
TRUE_METHODS: tuple[str, ...] = (
    "sendChatAction",
    "close",
    "logOut",
    "setMyDescription",
)
TRUE_METHODS += ("setMyShortDescription", "setMyName")
METHODS: tuple[str, ...] = (
    *TRUE_METHODS,
    "getMe",
    "getUpdates",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
)
METHODS += ("setMyCommands", "getMyCommands", "deleteMyCommands", "sendMessage", "sendPhoto")
METHODS += ("sendDocument",)
FILE_NAMES = "__file_names__"  # the param holding a multipart upload's file names, by field
METHODS += ("setChatMenuButton", "getChatMenuButton")
MENU_BUTTONS = ("commands", "web_app", "default")
METHODS += ("editMessageText", "editMessageCaption", "editMessageReplyMarkup", "deleteMessage")
METHODS += ("answerCallbackQuery", "getFile", *CHAT_METHODS, *STARS_METHODS)


@dataclass
class SentRequest:
    """One Bot API call as received (``ts``, ``time.time()``); ``response_ok`` is set once it
    has been carried out and answered, ``answered_at`` once any answer was given."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    ts: float
    response_ok: bool = False
    answered_at: float | None = None

    @property
    def answer_s(self) -> float | None:
        """How long the caller waited for the answer (None: not answered yet)."""
        return None if self.answered_at is None else self.answered_at - self.ts


@dataclass
class ChatMessage:
    """The current state of one message; ``plain`` is what the user reads (HTML tags stripped,
    entities unescaped), ``text``/``caption`` the raw value as sent."""

    message_id: int
    chat_id: int
    from_bot: bool
    text: str | None
    caption: str | None
    plain: str
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    photo: bytes | None = field(repr=False)
    edits: int = 0
    deleted: bool = False
    date: int = 0
    entities: list[dict[str, Any]] = field(default_factory=list)
    photo_sizes: list[dict[str, Any]] = field(default_factory=list)
    invoice: dict[str, Any] | None = None  # an invoice message's Invoice (sendInvoice)
    successful_payment: dict[str, Any] | None = None  # a user's service message of a payment
    document: dict[str, Any] | None = None  # a Document (sendDocument): file_name, file_id...
    document_bytes: bytes | None = field(default=None, repr=False)  # the uploaded file


@dataclass(frozen=True)
class CallbackAnswer:
    """One answerCallbackQuery (a query can be answered once)."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None = None


def flat_buttons(markup: dict[str, Any] | None) -> list[tuple[str, str | None]]:
    rows = (markup or {}).get("inline_keyboard") or []
    return [(b.get("text", ""), b.get("callback_data")) for row in rows for b in row]


def _int(params: dict[str, Any], key: str) -> int:
    value = params.get(key)
    if value is None or value == "":
        raise bad_request(f"{key} is empty" if key != "chat_id" else "chat not found")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {key} specified") from None


@dataclass
class _File:
    data: bytes
    unique_id: str
    path: str
    sizes: list[dict[str, Any]]  # every PhotoSize of the upload this file belongs to


class TelegramState(TelegramChats, TelegramStars):
    """Users, chats, messages, files and the update queue of one fake bot."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._lock = threading.RLock()
        bot = {"id": int(token.split(":", 1)[0]), "is_bot": True, "first_name": "Subsbot Test"}
        bot |= {"username": "subsbot_test_bot", "can_join_groups": True}
        flags = ("can_read_all_group_messages", "supports_inline_queries", "has_main_web_app")
        self.bot_user: dict[str, Any] = bot | dict.fromkeys(flags, False)
        self._init_state()

    def _init_state(self) -> None:
        self._users: dict[int, dict[str, Any]] = {}
        self._chats: dict[int, list[ChatMessage]] = {}
        self._files: dict[str, _File] = {}
        self._updates: list[dict[str, Any]] = []
        # update id -> (its kind, the users it is from or about): what the soak's diagnosis shows
        self.update_senders: dict[int, tuple[str, frozenset[int]]] = {}
        self._next_update_id = 1
        self._log: list[SentRequest] = []
        self._answers: list[CallbackAnswer] = []
        self._open_queries: set[str] = set()
        self._commands: list[dict[str, Any]] | None = None
        self._menu_buttons: dict[int | None, dict[str, Any]] = {}  # None: the default one
        self._blocked: set[int] = set()
        self._ids = itertools.count(1)
        self.webhook: dict[str, Any] | None = None  # url, secret_token, allowed_updates
        self.webhook_error: tuple[int, str] | None = None
        self._allowed_updates: list[str] | None = None  # None: Telegram's default set
        self._init_chats()
        self._init_stars()

    def _notify(self) -> None:
        """Called after the update queue changed (the server wakes its pollers)."""

    def reset(self) -> None:
        """Forget every user, message, file, update, request, answer and the webhook (and every
        chat, invoice, payment, subscription and Star transaction)."""
        with self._lock:
            self._init_state()
        self._notify()

    # --- driving the bot (tests) --------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str = "Alice",
        language_code: str = "en",
        username: str | None = None,
    ) -> dict[str, Any]:
        """Register (or update) a user and return its Telegram User dict."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        user |= {"language_code": language_code} | ({"username": username} if username else {})
        with self._lock:
            self._users[user_id] = user
            return copy.deepcopy(user)

    def _user(self, user_id: int) -> dict[str, Any]:
        with self._lock:
            if user_id not in self._users:
                self.user(user_id)
            return copy.deepcopy(self._users[user_id])

    def add_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update (its update_id is assigned here) and return it."""
        with self._lock:
            update = {"update_id": self._next_update_id, **copy.deepcopy(update)}
            self._next_update_id += 1
            self._updates.append(update)
            self.update_senders[update["update_id"]] = _kind_and_sender(update)
        self._notify()
        return copy.deepcopy(update)

    def send_text(self, user_id: int, text: str) -> dict[str, Any]:
        """The user writes ``text`` in the private chat; returns the Message dict."""
        entities: list[dict[str, Any]] = []
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0] if text.strip() else text
            entities = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        with self._lock:
            msg = self._new(user_id, False, text=text, plain=text, entities=entities)
            message = self.to_api(msg)
            self.add_update({"message": message})
        return message

    def edit_text(self, user_id: int, message_id: int, new_text: str) -> dict[str, Any]:
        """The user edits their message: an ``edited_message`` update."""
        with self._lock:
            msg = self._find(user_id, message_id, "edit")
            msg.text = msg.plain = new_text
            msg.edits += 1
            message = self.to_api(msg)
            self.add_update({"edited_message": message})
        return message

    def press(self, user_id: int, message: ChatMessage | int, data: str) -> dict[str, Any]:
        """The user presses a button (any ``data``) under a bot message; returns the query."""
        message_id = message if isinstance(message, int) else message.message_id
        with self._lock:
            msg = self._find(user_id, message_id, "press")
            query_id = str(next(self._ids) * 1_000_003 + user_id)
            self._open_queries.add(query_id)
            query = {"id": query_id, "from": self._user(user_id), "chat_instance": f"ci{user_id}"}
            query |= {"data": data, "message": self.to_api(msg)}
            self.add_update({"callback_query": query})
        return query

    def block(self, user_id: int) -> None:
        """The user blocks the bot: every send*/edit* to that chat answers 403."""
        with self._lock:
            self._blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        with self._lock:
            self._blocked.discard(user_id)

    # --- reading what happened ----------------------------------------------------------------

    @property
    def requests(self) -> list[SentRequest]:
        with self._lock:
            return [dataclasses.replace(r) for r in self._log]

    def calls(self, method: str | None = None, chat_id: int | None = None) -> list[SentRequest]:
        """Requests to ``method`` (case-insensitive) and/or about ``chat_id``."""
        return [
            r
            for r in self.requests
            if (method is None or r.method.lower() == method.lower())
            and (chat_id is None or str(r.params.get("chat_id")) == str(chat_id))
        ]

    def messages(self, chat_id: int) -> list[ChatMessage]:
        """Every message of the chat (deleted ones flagged), oldest first."""
        with self._lock:
            return [dataclasses.replace(m) for m in self._chats.get(chat_id, [])]

    def bot_messages(self, chat_id: int) -> list[ChatMessage]:
        return [m for m in self.messages(chat_id) if m.from_bot]

    def last(self, chat_id: int) -> ChatMessage | None:
        """The newest bot message of the chat that is not deleted."""
        alive = [m for m in self.bot_messages(chat_id) if not m.deleted]
        return alive[-1] if alive else None

    @staticmethod
    def buttons(message: ChatMessage | dict[str, Any]) -> list[tuple[str, str | None]]:
        """(text, callback_data) of every inline button, row by row."""
        markup = message.reply_markup if isinstance(message, ChatMessage) else message
        if isinstance(markup, dict) and "reply_markup" in markup:
            markup = markup["reply_markup"]
        return flat_buttons(markup)

    @property
    def answers(self) -> list[CallbackAnswer]:
        with self._lock:
            return list(self._answers)

    @property
    def commands(self) -> list[dict[str, Any]] | None:
        with self._lock:
            return copy.deepcopy(self._commands)

    def menu_button(self, chat_id: int | None = None) -> dict[str, Any]:
        """The menu button ``chat_id`` shows (None: the default one for private chats), as
        ``getChatMenuButton`` answers: a chat's own, else the default, else ``commands``."""
        with self._lock:
            return copy.deepcopy(self._menu_button(chat_id))

    def _menu_button(self, chat_id: int | None) -> dict[str, Any]:
        found = self._menu_buttons.get(chat_id) if chat_id is not None else None
        return found or self._menu_buttons.get(None) or {"type": "commands"}

    def take_updates(
        self, offset: int | None, limit: int, allowed: list[str] | None
    ) -> list[dict[str, Any]]:
        """Drop updates before ``offset`` (the last -offset kept if negative) and of types not
        allowed; return up to ``limit`` of the rest. ``allowed`` replaces the remembered
        allowed_updates ([]: back to the default, all but chat_member and reactions); None
        keeps it, as Telegram does."""
        with self._lock:
            if offset is not None and offset < 0:
                self._updates = self._updates[offset:]
            elif offset is not None:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if allowed is not None:
                self._allowed_updates = list(allowed) or None
            kinds = self._allowed_updates
            self._updates = [u for u in self._updates if update_allowed(u, kinds)]
            return copy.deepcopy(self._updates[:limit])

    def pending_updates(self) -> int:
        with self._lock:
            return len(self._updates)

    @property
    def last_update_id(self) -> int:
        """The update_id of the newest update queued (0: none yet); read it under ``_lock``
        together with the call that queued it when other threads queue updates too."""
        with self._lock:
            return self._next_update_id - 1

    def file_bytes(self, file_id: str) -> bytes:
        with self._lock:
            return self._files[file_id].data

    # --- helpers ------------------------------------------------------------------------------

    def _record(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> SentRequest:
        entry = SentRequest(method, params, files, time.time())
        with self._lock:
            self._log.append(entry)
        return entry

    def _new(self, chat_id: int, from_bot: bool, **fields: Any) -> ChatMessage:
        with self._lock:
            self._user(chat_id)
            chat = self._chats.setdefault(chat_id, [])
            msg_id = chat[-1].message_id + 1 if chat else 1
            values: dict[str, Any] = {"text": None, "caption": None, "parse_mode": None}
            values |= {"reply_markup": None, "photo": None} | fields
            msg = ChatMessage(msg_id, chat_id, from_bot, date=int(time.time()), **values)
            chat.append(msg)
            return msg

    def _find(self, chat_id: int, message_id: int, what: str) -> ChatMessage:
        for msg in self._chats.get(chat_id, []):
            if msg.message_id == message_id and not msg.deleted:
                return msg
        raise bad_request(f"message to {what} not found")

    def to_api(self, msg: ChatMessage) -> dict[str, Any]:
        """The Telegram Message dict of ``msg``."""
        with self._lock:
            user = self._user(msg.chat_id)
            chat = {"id": msg.chat_id, "type": "private", "first_name": user["first_name"]}
            chat |= {"username": user["username"]} if "username" in user else {}
            out: dict[str, Any] = {"message_id": msg.message_id, "date": msg.date, "chat": chat}
            out["from"] = copy.deepcopy(self.bot_user) if msg.from_bot else user
            if msg.edits:
                out["edit_date"] = int(time.time())
            key = "text" if msg.text is not None else "caption"
            if msg.text is not None or msg.caption is not None:
                out[key] = msg.plain
            if msg.entities:
                out["entities" if key == "text" else "caption_entities"] = msg.entities
            if msg.photo_sizes:
                out["photo"] = copy.deepcopy(msg.photo_sizes)
            if msg.reply_markup and msg.reply_markup.get("inline_keyboard"):
                out["reply_markup"] = copy.deepcopy(msg.reply_markup)
            if msg.invoice is not None:
                out["invoice"] = copy.deepcopy(msg.invoice)
            if msg.successful_payment is not None:
                out["successful_payment"] = copy.deepcopy(msg.successful_payment)
            if msg.document is not None:
                out["document"] = copy.deepcopy(msg.document)
            return out

    def _formatted(self, params: dict[str, Any], key: str, limit: int) -> dict[str, Any]:
        raw = params.get(key)
        text = "" if raw is None else str(raw)
        mode = params.get("parse_mode") or None
        entities = params.get("entities" if key == "text" else "caption_entities") or []
        plain = text
        if mode and str(mode).upper() == "HTML":
            plain, entities = parse_html(text)
        if key == "text" and not plain.strip():
            raise bad_request("message text is empty")
        if utf16_len(plain) > limit:
            raise bad_request(f"message {'' if key == 'text' else 'caption '}is too long")
        value = None if raw is None and key == "caption" else text
        return {key: value, "plain": plain, "parse_mode": mode, "entities": entities}

    @staticmethod
    def _markup(params: dict[str, Any]) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if not isinstance(markup, dict):
            return None
        for _, data in flat_buttons(markup):
            if data is not None and not 1 <= len(data.encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
        return markup

    def _store_photo(self, data: bytes) -> list[dict[str, Any]]:
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except Exception:
            raise bad_request("IMAGE_PROCESS_FAILED") from None
        unique, longest = secrets.token_hex(4), max(width, height)
        sides = ([m for m in (90, 320, 800) if m < longest] + [longest])[-3:]
        photos: list[dict[str, Any]] = []
        for n, side in enumerate(sides):
            scale = side / longest
            file_id = f"AgACAgIAAx{unique}{n}{secrets.token_hex(8)}"
            path = f"photos/file_{len(self._files)}.png"
            self._files[file_id] = _File(data, f"AQAD{unique}{n}", path, photos)
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
            size = len(data) if side == longest else max(1, round(len(data) * scale * scale))
            photos.append({"file_id": file_id, "file_unique_id": f"AQAD{unique}{n}"})
            photos[-1] |= {"width": w, "height": h, "file_size": size}
        return photos

    # --- the Bot API methods that answer at once (getUpdates lives in the server) -------------

    def api(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """Run one Bot API method (lower-case name) or raise ApiError."""
        chat_id = params.get("chat_id")
        with self._lock:
            blockable = method.startswith(("send", "edit")) and chat_id is not None
            if blockable and _int(params, "chat_id") in self._blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if method in {m.lower() for m in TRUE_METHODS}:
                return True
            if method == "getme":
                return copy.deepcopy(self.bot_user)
            if method == "setmycommands":
                self._commands = list(params.get("commands") or [])
                return True
            if method == "setchatmenubutton":
                button = params.get("menu_button") or {"type": "default"}
                if not isinstance(button, dict) or button.get("type") not in MENU_BUTTONS:
                    raise bad_request("BUTTON_TYPE_INVALID")
                target = _int(params, "chat_id") if chat_id is not None else None
                if button["type"] == "default":
                    self._menu_buttons.pop(target, None)
                else:
                    self._menu_buttons[target] = button
                return True
            if method == "getchatmenubutton":
                return self._menu_button(_int(params, "chat_id") if chat_id is not None else None)
            if method == "getmycommands":
                return copy.deepcopy(self._commands or [])
            if method == "deletemycommands":
                self._commands = None
                return True
            if method == "sendmessage":
                fields = self._formatted(params, "text", 4096)
                markup = self._markup(params)
                return self.to_api(
                    self._new(_int(params, "chat_id"), True, reply_markup=markup, **fields)
                )
            if method == "sendphoto":
                return self._send_photo(params, files)
            if method == "senddocument":
                return self._send_document(params, files)
            if method.startswith("editmessage"):
                return self._edit(method, params)
            if method == "deletemessage":
                chat_id, message_id = _int(params, "chat_id"), _int(params, "message_id")
                self._find(chat_id, message_id, "delete").deleted = True
                return True
            if method == "answercallbackquery":
                query_id = str(params.get("callback_query_id", ""))
                if query_id not in self._open_queries:
                    raise bad_request(
                        "query is too old and response timeout expired or query ID is invalid"
                    )
                self._open_queries.discard(query_id)
                alert = bool(params.get("show_alert"))
                answer = CallbackAnswer(query_id, params.get("text"), alert, params.get("url"))
                self._answers.append(answer)
                return True
            if method == "getfile":
                file_id = str(params.get("file_id", ""))
                if file_id not in self._files:
                    raise bad_request("invalid file_id")
                f = self._files[file_id]
                info = {"file_id": file_id, "file_unique_id": f.unique_id, "file_path": f.path}
                return info | {"file_size": len(f.data)}
            if method in CHAT_API:
                return self._chat_api(method, params)
            if method in STARS_API:
                return self._stars_api(method, params)
        raise ApiError(404, "Not Found")

    def _send_photo(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        photo = params.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            photo = files.get(photo.removeprefix("attach://"))
        elif "photo" in files:
            photo = files["photo"]
        fields = self._formatted(params, "caption", 1024)
        markup = self._markup(params)
        chat_id = _int(params, "chat_id")
        if isinstance(photo, bytes):
            sizes = self._store_photo(photo)
        elif isinstance(photo, str) and photo in self._files:
            sizes = copy.deepcopy(self._files[photo].sizes)
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        data = self._files[sizes[-1]["file_id"]].data
        msg = self._new(chat_id, True, photo=data, photo_sizes=sizes, reply_markup=markup, **fields)
        return self.to_api(msg)

    def _send_document(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        """An uploaded file (multipart ``document``) or one sent before, by its file_id."""
        document = params.get("document")
        name = (params.get(FILE_NAMES) or {}).get("document")
        if isinstance(document, str) and document.startswith("attach://"):
            field_name = document.removeprefix("attach://")
            document = files.get(field_name)
            name = (params.get(FILE_NAMES) or {}).get(field_name)
        elif "document" in files:
            document = files["document"]
        if isinstance(document, str) and document in self._files:
            data = self._files[document].data
            info = copy.deepcopy(self._files[document].sizes[0])
        elif isinstance(document, bytes):
            if not document:
                raise bad_request("file must be non-empty")
            data, unique = document, secrets.token_hex(4)
            file_id = f"BQACAgI{unique}{len(self._files)}"
            info = {"file_id": file_id, "file_unique_id": f"AgAD{unique}"}
            info |= {"file_name": name or "document", "file_size": len(data)}
            path = f"documents/file_{len(self._files)}"
            self._files[file_id] = _File(data, info["file_unique_id"], path, [info])
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        fields = self._formatted(params, "caption", 1024)
        msg = self._new(
            _int(params, "chat_id"),
            True,
            document=info,
            document_bytes=data,
            reply_markup=self._markup(params),
            **fields,
        )
        return self.to_api(msg)

    def _edit(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("inline_message_id"):
            raise bad_request("inline messages are not supported by the fake")
        msg = self._find(_int(params, "chat_id"), _int(params, "message_id"), "edit")
        if not msg.from_bot:
            raise bad_request("message can't be edited")
        new = {"reply_markup": self._markup(params)}
        if method == "editmessagetext":
            if msg.text is None:
                raise bad_request("there is no text in the message to edit")
            new |= self._formatted(params, "text", 4096)
        elif method == "editmessagecaption":
            if msg.photo is None:
                raise bad_request("there is no caption in the message to edit")
            new |= self._formatted(params, "caption", 1024)
        elif method != "editmessagereplymarkup":
            raise ApiError(404, "Not Found")
        seen = ("plain", "entities", "reply_markup")
        if all(getattr(msg, k) == new.get(k, getattr(msg, k)) for k in seen):
            raise bad_request(NOT_MODIFIED)
        for key, value in new.items():
            setattr(msg, key, value)
        msg.edits += 1
        return self.to_api(msg)


def _kind_and_sender(update: dict[str, Any]) -> tuple[str, frozenset[int]]:
    """("message", {10001}), ("chat_member", {bot, 10001}), ...: the update's kind, and the
    users it is from or about."""
    for kind, body in update.items():
        if kind == "update_id" or not isinstance(body, dict):
            continue
        member = body.get("new_chat_member")
        users = [body.get("from"), member.get("user") if isinstance(member, dict) else None]
        ids = [u.get("id") for u in users if isinstance(u, dict)]
        return kind, frozenset(i for i in ids if isinstance(i, int))
    return "unknown", frozenset()
