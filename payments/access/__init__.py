"""Chat access: the channels and groups a plan grants, kept in step with the subscriptions.

A plan may name chats (the plans file's ``chats``). A customer is *entitled* to a chat while one
of their subscriptions to a plan granting it runs, plus GRACE_DAYS. Every (customer, chat) pair
the bot ever handled is one ``memberships`` row with its state, so granting and removing are
idempotent and survive restarts:

    pending --link created and sent--> invited --joined through it--> member --left--> left
    invited / member / left --not entitled--> removed (ban + unban) --entitled again--> pending

A removal is claimed in the database before the bot acts (``removal_ended_at`` set, in a
compare-and-set that the customer is still not entitled): from then on it is finished (ban, unban,
goodbye) or, if the customer renewed meanwhile, undone (unban), whatever happens to the run.
Someone who joins through another customer's link is stored as an expulsion with that decision.

This module is Telegram-free: it says which invites and removals are due and records what the
Telegram layer did about them (and the customer's message, in the same transaction).
"""

from payments.access.chat import ChatEvents
from payments.access.lifecycle import Lifecycle
from payments.access.model import (
    HELD,
    IN_CHAT,
    INVITED,
    LEFT,
    LINK_LIFETIME_MS,
    MEMBER,
    PENDING,
    REMOVED,
    ChatMembers,
    Due,
    Expulsion,
    JoinOutcome,
)


class AccessService(Lifecycle, ChatEvents):
    """Chat access for one catalogue. Every method opens its own transaction."""


__all__ = [
    "HELD",
    "INVITED",
    "IN_CHAT",
    "LEFT",
    "LINK_LIFETIME_MS",
    "MEMBER",
    "PENDING",
    "REMOVED",
    "AccessService",
    "ChatMembers",
    "Due",
    "Expulsion",
    "JoinOutcome",
]
