"""Channels and groups of the fake Telegram Bot API: members, invite links and join requests.

:class:`TelegramChats` is mixed into :class:`fakes.telegram_state.TelegramState`, so every
control below is a method of ``FakeTelegram`` (thread-safe, under the state's ``_lock``).

Set-up (no update): ``add_chat(chat_id, title=, type=, bot_status=, bot_rights=, owner_id=)``
(the bot is an administrator with every right unless told otherwise; the chat has an owner,
``OWNER_ID``), ``add_member(chat_id, user_id, status)``.
The owner changes the bot: ``set_bot_rights(chat_id, **rights)``, ``set_bot_status(chat_id,
status)``; both queue a ``my_chat_member`` update.
Users act: ``join_by_link(user_id, link, now=)`` -> "joined" | "requested" | "already_requested"
| a refusal ("unknown", "already_member", "revoked", "expired", "used_up", "banned", checked in
that order; ``now`` defaults to the wall clock), ``request_join(user_id, chat_id)`` (a join
request without a link), ``leave(user_id, chat_id)``.
Queries: ``member_status``, ``members``, ``banned``, ``invite_links`` (with ``usage``),
``join_requests``.

Like Telegram: every membership change queues a ``chat_member`` update (``from`` = whoever
caused it; ``invite_link`` when the user came through a link, also after an approved request;
``via_join_request`` for an approved request without a link), but only while the bot is an
administrator; ``chat_join_request`` updates need its ``can_invite_users`` right. By default
getUpdates/webhooks do not deliver ``chat_member`` (see ``TelegramState.take_updates``).
``unbanChatMember`` without ``only_if_banned`` removes a current member. A ban's ``until_date``
30 s to 366 days ahead ends it by itself then (the user is "left" again, without an update);
any other is for ever. Time is ``clock()`` (the wall clock unless a test sets its own, in
seconds). Not modelled: the primary invite link, ``editChatInviteLink``, per-user rights.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fakes.telegram_html import ApiError, bad_request

CHAT_METHODS: tuple[str, ...] = ("getChat", "getChatMember", "getChatAdministrators")
CHAT_METHODS += ("getChatMemberCount", "createChatInviteLink", "revokeChatInviteLink")
CHAT_METHODS += ("banChatMember", "unbanChatMember")
CHAT_METHODS += ("approveChatJoinRequest", "declineChatJoinRequest")
CHAT_API = frozenset(m.lower() for m in CHAT_METHODS)
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

NO_INVITE_RIGHTS = "Bad Request: not enough rights to manage chat invite links"
NO_RESTRICT_RIGHTS = "Bad Request: not enough rights to restrict/unrestrict chat member"
NO_REQUEST_RIGHTS = "Bad Request: CHAT_ADMIN_REQUIRED"
IS_ADMIN = "Bad Request: user is an administrator of the chat"
NO_REQUEST = "Bad Request: HIDE_REQUESTER_MISSING"
ALREADY_PARTICIPANT = "Bad Request: USER_ALREADY_PARTICIPANT"
UNKNOWN_LINK = "Bad Request: INVITE_HASH_EXPIRED"
BAD_LIMIT = "Bad Request: member limit must be between 1 and 99999"
LIMIT_WITH_REQUEST = "Bad Request: member limit can't be specified for links requiring approval"
LONG_NAME = "Bad Request: invite link name is too long"
OWNER_ID = 5_000_001

_RIGHTS = "manage_chat delete_messages manage_video_chats restrict_members promote_members"
COMMON_RIGHTS = tuple(f"can_{r}" for r in f"{_RIGHTS} change_info invite_users".split())
COMMON_RIGHTS += ("can_post_stories", "can_edit_stories", "can_delete_stories")
TYPE_RIGHTS: dict[str, tuple[str, ...]] = {
    "channel": ("can_post_messages", "can_edit_messages", "can_manage_direct_messages"),
    "supergroup": ("can_pin_messages", "can_manage_topics", "can_manage_tags"),
    "group": ("can_pin_messages", "can_manage_tags"),
}
_SEND = "messages audios documents photos videos video_notes voice_notes polls other_messages"
RESTRICTED_FLAGS = tuple(f"can_send_{kind}" for kind in _SEND.split())
_OTHER = "add_web_page_previews change_info invite_users pin_messages manage_topics edit_tag"
RESTRICTED_FLAGS += tuple(f"can_{r}" for r in f"{_OTHER} react_to_messages".split())
IN_CHAT = frozenset({"creator", "administrator", "member", "restricted"})
STATUSES = IN_CHAT | {"left", "kicked"}
GIFT_TYPES = "unlimited_gifts limited_gifts unique_gifts premium_subscription gifts_from_channels"


def update_allowed(update: dict[str, Any], allowed: list[str] | None) -> bool:
    """Whether ``update`` passes an allowed_updates setting (None: Telegram's default)."""
    kinds = set(update) - {"update_id"}
    return not kinds & NOT_BY_DEFAULT if allowed is None else kinds <= set(allowed)


@dataclass
class _Member:
    status: str
    until_date: int = 0
    rights: dict[str, bool] = field(default_factory=dict)


@dataclass
class _Link:
    chat_id: int
    url: str
    creator: dict[str, Any]
    name: str | None
    expire_date: int | None
    member_limit: int | None
    creates_join_request: bool
    is_revoked: bool = False
    usage: int = 0

    def api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"invite_link": self.url, "creator": copy.deepcopy(self.creator)}
        out |= {"creates_join_request": self.creates_join_request, "is_primary": False}
        out |= {"is_revoked": self.is_revoked}
        optional = {"name": self.name, "expire_date": self.expire_date}
        optional |= {"member_limit": self.member_limit}
        return out | {k: v for k, v in optional.items() if v is not None}


@dataclass
class _Group:
    id: int
    type: str
    title: str
    owner_id: int | None
    members: dict[int, _Member] = field(default_factory=dict)
    links: dict[str, _Link] = field(default_factory=dict)
    requests: dict[int, str | None] = field(default_factory=dict)  # user -> link used

    def api(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "title": self.title}

    def rights(self) -> tuple[str, ...]:
        return COMMON_RIGHTS + TYPE_RIGHTS[self.type]


BAN_MIN_S, BAN_MAX_S = 30, 366 * 86400  # a temporary ban outside these is for ever


def _num(params: dict[str, Any], key: str) -> int | None:
    value = params.get(key)
    if value in (None, "") and key == "user_id":
        raise bad_request("user_id is empty")
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {key} specified") from None


class TelegramChats:
    """Channels, groups and their members; mixed into TelegramState."""

    _lock: threading.RLock
    bot_user: dict[str, Any]
    if TYPE_CHECKING:

        def _user(self, user_id: int) -> dict[str, Any]: ...
        def add_update(self, update: dict[str, Any]) -> dict[str, Any]: ...

    def _init_chats(self) -> None:
        self._groups: dict[int, _Group] = {}
        self.clock: Callable[[], float] = time.time  # seconds; bans and links expire by it

    def _ts(self, now: float | None) -> int:
        return int(self.clock() if now is None else now)

    # --- set-up and the owner's actions (tests) -----------------------------------------------

    def add_chat(
        self,
        chat_id: int,
        *,
        title: str = "Paid channel",
        type: str = "channel",
        bot_status: str = "administrator",
        bot_rights: dict[str, bool] | None = None,
        owner_id: int | None = OWNER_ID,
    ) -> None:
        """Create a channel/supergroup/group with its owner and the bot in it (no update)."""
        if type not in TYPE_RIGHTS or bot_status not in STATUSES - {"creator"}:
            raise ValueError(f"bad chat type {type!r} or bot status {bot_status!r}")
        group = _Group(chat_id, type, title, owner_id)
        with self._lock:
            self._groups[chat_id] = group
            if owner_id is not None:
                self._user(owner_id)
                group.members[owner_id] = _Member("creator")
            group.members[self._bot_id] = _Member(bot_status, rights=self._rights(group, {}))
            if bot_rights:
                group.members[self._bot_id].rights |= self._checked(group, bot_rights)

    def set_bot_rights(self, chat_id: int, **rights: bool) -> None:
        """The owner changes the bot's rights (promoting it if needed): ``my_chat_member``."""
        with self._lock:
            group = self._group_of(chat_id)
            old = group.members.get(self._bot_id, _Member("left"))
            base = old.rights if old.status == "administrator" else self._rights(group, {})
            new = _Member("administrator", rights=base | self._checked(group, rights))
            self._change(group, self._bot_id, new, self._owner_or_bot(group))

    def set_bot_status(self, chat_id: int, status: str) -> None:
        """The owner makes the bot "administrator", "member", "left" or "kicked"."""
        if status not in STATUSES - {"creator", "restricted"}:
            raise ValueError(f"bad bot status {status!r}")
        with self._lock:
            group = self._group_of(chat_id)
            old = group.members.get(self._bot_id, _Member("left"))
            rights = old.rights or self._rights(group, {})
            self._change(
                group, self._bot_id, _Member(status, rights=rights), self._owner_or_bot(group)
            )

    def add_member(self, chat_id: int, user_id: int, status: str = "member") -> None:
        """Put ``user_id`` in the chat with ``status`` (set-up: no update)."""
        if status not in STATUSES:
            raise ValueError(f"bad member status {status!r}")
        with self._lock:
            group = self._group_of(chat_id)
            self._user(user_id)
            group.members[user_id] = _Member(status, rights=self._rights(group, {}))

    # --- what users do (tests) ----------------------------------------------------------------

    def join_by_link(self, user_id: int, invite_link: str, *, now: float | None = None) -> str:
        """The user taps ``invite_link``; see the module docstring for the answers."""
        with self._lock:
            link = next(
                (g.links[invite_link] for g in self._groups.values() if invite_link in g.links),
                None,
            )
            if link is None:
                return "unknown"
            group = self._groups[link.chat_id]
            status = self._status(group, user_id)
            expired = link.expire_date is not None and self._ts(now) >= link.expire_date
            used_up = link.member_limit is not None and link.usage >= link.member_limit
            refusals = [("already_member", status in IN_CHAT), ("revoked", link.is_revoked)]
            refusals += [("expired", expired), ("used_up", used_up)]
            refusals += [("banned", status == "kicked")]
            refusal = next((word for word, applies in refusals if applies), None)
            if refusal is not None:
                return refusal
            if link.creates_join_request:
                return self._request(group, user_id, link, now)
            link.usage += 1
            self._change(group, user_id, _Member("member"), user_id, link=link, now=now)
            return "joined"

    def request_join(self, user_id: int, chat_id: int, *, now: float | None = None) -> str:
        """A join request without an invite link: "requested", "already_requested",
        "already_member" or "banned"."""
        with self._lock:
            group = self._group_of(chat_id)
            status = self._status(group, user_id)
            if status in IN_CHAT:
                return "already_member"
            return "banned" if status == "kicked" else self._request(group, user_id, None, now)

    def leave(self, user_id: int, chat_id: int) -> bool:
        """A member (not the owner) leaves the chat; False if they were not in it."""
        with self._lock:
            group = self._group_of(chat_id)
            if self._status(group, user_id) not in IN_CHAT - {"creator"}:
                return False
            self._change(group, user_id, _Member("left"), user_id)
            return True

    # --- reading (tests) ----------------------------------------------------------------------

    def member_status(self, chat_id: int, user_id: int) -> str:
        with self._lock:
            return self._status(self._group_of(chat_id), user_id)

    def members(self, chat_id: int) -> set[int]:
        """Everyone in the chat: members, restricted, administrators (the bot too) and owner."""
        with self._lock:
            group = self._group_of(chat_id)
            return {uid for uid, m in group.members.items() if m.status in IN_CHAT}

    def banned(self, chat_id: int) -> set[int]:
        """Everyone banned from the chat (status "kicked"): they cannot join until unbanned."""
        with self._lock:
            group = self._group_of(chat_id)
            return {uid for uid, m in group.members.items() if m.status == "kicked"}

    def invite_links(self, chat_id: int) -> list[dict[str, Any]]:
        """Every link created, oldest first: the ChatInviteLink fields plus ``usage`` (joins)."""
        with self._lock:
            return [
                link.api() | {"usage": link.usage}
                for link in self._group_of(chat_id).links.values()
            ]

    def join_requests(self, chat_id: int) -> set[int]:
        with self._lock:
            return set(self._group_of(chat_id).requests)

    # --- the Bot API methods ------------------------------------------------------------------

    def _chat_api(self, method: str, params: dict[str, Any]) -> Any:
        with self._lock:
            group = self._reachable(params.get("chat_id"))
            if method == "getchat":
                return self._full_info(group)
            if method == "getchatmember":
                return self._member_api(group, _num(params, "user_id") or 0)
            if method == "getchatadministrators":
                order = sorted(group.members.items(), key=lambda kv: kv[1].status != "creator")
                admins = [uid for uid, m in order if m.status in ("creator", "administrator")]
                return [self._member_api(group, uid) for uid in admins]
            if method == "getchatmembercount":
                return sum(m.status in IN_CHAT for m in group.members.values())
            if method == "createchatinvitelink":
                return self._create_link(group, params)
            if method == "revokechatinvitelink":
                self._require(group, "can_invite_users", NO_INVITE_RIGHTS)
                link = group.links.get(str(params.get("invite_link", "")))
                if link is None:
                    raise ApiError(400, UNKNOWN_LINK)
                link.is_revoked = True
                return link.api()
            user_id = _num(params, "user_id") or 0
            if method in ("banchatmember", "unbanchatmember"):
                self._require(group, "can_restrict_members", NO_RESTRICT_RIGHTS)
                return self._ban(group, user_id, params, method == "banchatmember")
            self._require(group, "can_invite_users", NO_REQUEST_RIGHTS)
            if user_id not in group.requests:
                raise ApiError(400, NO_REQUEST)
            if method == "approvechatjoinrequest" and self._status(group, user_id) in IN_CHAT:
                raise ApiError(400, ALREADY_PARTICIPANT)
            url = group.requests.pop(user_id)
            if method == "approvechatjoinrequest":
                link, joined = group.links.get(url or ""), _Member("member")
                if link is not None:
                    link.usage += 1
                self._change(group, user_id, joined, self._bot_id, link=link, via_request=not link)
            return True

    def _create_link(self, group: _Group, params: dict[str, Any]) -> dict[str, Any]:
        self._require(group, "can_invite_users", NO_INVITE_RIGHTS)
        name = None if params.get("name") is None else str(params["name"])
        limit, expire = _num(params, "member_limit"), _num(params, "expire_date") or None
        creates_request = bool(params.get("creates_join_request"))
        if limit is not None and not 1 <= limit <= 99999:
            raise ApiError(400, BAD_LIMIT)
        if limit is not None and creates_request:
            raise ApiError(400, LIMIT_WITH_REQUEST)
        if name is not None and len(name) > 32:
            raise ApiError(400, LONG_NAME)
        url = f"https://t.me/+{secrets.token_urlsafe(12)}"
        link = _Link(group.id, url, self._bot_api_user(), name, expire, limit, creates_request)
        group.links[url] = link
        return link.api()

    def _ban(self, group: _Group, user_id: int, params: dict[str, Any], ban: bool) -> bool:
        status = self._status(group, user_id)
        if (ban or not params.get("only_if_banned")) and status in ("creator", "administrator"):
            raise ApiError(400, IS_ADMIN)
        if ban:
            group.requests.pop(user_id, None)
            until = _num(params, "until_date") or 0
            if not BAN_MIN_S <= until - self._ts(None) <= BAN_MAX_S:
                until = 0  # for ever
            self._change(group, user_id, _Member("kicked", until), self._bot_id)
        elif status == "kicked" or (status in IN_CHAT and not params.get("only_if_banned")):
            self._change(group, user_id, _Member("left"), self._bot_id)  # the trap, if a member
        return True

    # --- helpers ------------------------------------------------------------------------------

    @property
    def _bot_id(self) -> int:
        return int(self.bot_user["id"])

    def _bot_api_user(self) -> dict[str, Any]:
        keys = ("id", "is_bot", "first_name", "username")
        return {k: self.bot_user[k] for k in keys if k in self.bot_user}

    def _owner_or_bot(self, group: _Group) -> int:
        return self._bot_id if group.owner_id is None else group.owner_id

    def _group_of(self, chat_id: int) -> _Group:
        if chat_id not in self._groups:
            raise KeyError(f"no chat {chat_id}: add_chat() it first")
        return self._groups[chat_id]

    def _reachable(self, chat_id: Any) -> _Group:
        try:
            group = self._groups.get(int(chat_id))
        except (TypeError, ValueError):
            group = None
        if group is None:
            raise bad_request("chat not found")
        status = self._status(group, self._bot_id)
        if status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {group.type} chat")
        if status == "left" and group.type == "channel":
            raise bad_request("chat not found")
        if status == "left":
            raise ApiError(403, f"Forbidden: bot is not a member of the {group.type} chat")
        return group

    def _require(self, group: _Group, right: str, error: str) -> None:
        me = group.members.get(self._bot_id, _Member("left"))
        if me.status != "administrator" or not me.rights.get(right):
            raise ApiError(400, error)

    def _status(self, group: _Group, user_id: int) -> str:
        self._lift(group, user_id)
        return group.members[user_id].status if user_id in group.members else "left"

    def _lift(self, group: _Group, user_id: int) -> None:
        """A temporary ban whose time is up ends (Telegram sends no update for it)."""
        member = group.members.get(user_id)
        if member and member.status == "kicked" and 0 < member.until_date <= self._ts(None):
            group.members[user_id] = _Member("left")

    def _rights(self, group: _Group, given: dict[str, bool]) -> dict[str, bool]:
        return dict.fromkeys(group.rights(), True) | given

    @staticmethod
    def _checked(group: _Group, rights: dict[str, bool]) -> dict[str, bool]:
        unknown = set(rights) - set(group.rights())
        if unknown:
            raise ValueError(f"no such {group.type} administrator right(s): {sorted(unknown)}")
        return {k: bool(v) for k, v in rights.items()}

    def _full_info(self, group: _Group) -> dict[str, Any]:
        info = group.api() | {"accent_color_id": 0, "max_reaction_count": 11}
        return info | {"accepted_gift_types": dict.fromkeys(GIFT_TYPES.split(), False)}

    def _member_api(self, group: _Group, user_id: int) -> dict[str, Any]:
        self._lift(group, user_id)
        member = group.members.get(user_id, _Member("left"))
        user = self._bot_api_user() if user_id == self._bot_id else self._user(user_id)
        out: dict[str, Any] = {"status": member.status, "user": user}
        if member.status == "creator":
            out["is_anonymous"] = False
        elif member.status == "administrator":
            out |= {"can_be_edited": False, "is_anonymous": False}
            out |= {k: member.rights.get(k, False) for k in group.rights()}
        elif member.status == "restricted":
            out |= dict.fromkeys(RESTRICTED_FLAGS, False)
            out |= {"is_member": True, "until_date": member.until_date}
        elif member.status == "kicked":
            out["until_date"] = member.until_date
        return out

    def _request(self, group: _Group, user_id: int, link: _Link | None, now: float | None) -> str:
        if user_id in group.requests:
            return "already_requested"
        group.requests[user_id] = link.url if link else None
        me = group.members.get(self._bot_id, _Member("left"))
        if me.status == "administrator" and me.rights.get("can_invite_users"):
            request = {"chat": group.api(), "from": self._user(user_id), "date": self._ts(now)}
            request |= {"user_chat_id": user_id} | ({"invite_link": link.api()} if link else {})
            self.add_update({"chat_join_request": request})
        return "requested"

    def _change(
        self,
        group: _Group,
        user_id: int,
        new: _Member,
        actor: int,
        *,
        link: _Link | None = None,
        via_request: bool = False,
        now: float | None = None,
    ) -> None:
        """Set a member's state and queue the chat_member / my_chat_member update, if any."""
        old_api = self._member_api(group, user_id)
        group.members[user_id] = new
        new_api = self._member_api(group, user_id)
        if old_api == new_api:
            return
        mine = user_id == self._bot_id
        if not mine and self._status(group, self._bot_id) != "administrator":
            return
        from_user = self._bot_api_user() if actor == self._bot_id else self._user(actor)
        change = {"chat": group.api(), "from": from_user, "date": self._ts(now)}
        change |= {"old_chat_member": old_api, "new_chat_member": new_api}
        change |= {"invite_link": link.api()} if link is not None else {}
        change |= {"via_join_request": True} if via_request else {}
        self.add_update({"my_chat_member" if mine else "chat_member": change})
