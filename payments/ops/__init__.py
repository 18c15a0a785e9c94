"""Operations: what admins do and see (corrections, queues, figures, customers' support
requests, the payments export), health, retention and the set-up check."""

from payments.ops.admin import AdminResult, AdminService, BlockResult, PendingOverview, UserOverview
from payments.ops.capacity import CapacityWarning
from payments.ops.counting import COUNT_CAP
from payments.ops.export import COLUMNS as EXPORT_COLUMNS
from payments.ops.export import (
    BadRange,
    ExportRange,
    ExportRow,
    ExportService,
    export_range,
    to_csv,
)
from payments.ops.health import Health, check_health
from payments.ops.reports import ShopStats, WindowStats, shop_stats
from payments.ops.retention import PruneReport, prune
from payments.ops.setup_check import (
    WHERE_FROM,
    OkxAccess,
    Report,
    check_setup,
    url_password,
)
from payments.ops.support import SUPPORT_WINDOW_MS, SupportRequest, SupportService

__all__ = [
    "COUNT_CAP",
    "EXPORT_COLUMNS",
    "SUPPORT_WINDOW_MS",
    "WHERE_FROM",
    "AdminResult",
    "AdminService",
    "BadRange",
    "BlockResult",
    "CapacityWarning",
    "ExportRange",
    "ExportRow",
    "ExportService",
    "Health",
    "OkxAccess",
    "PendingOverview",
    "PruneReport",
    "Report",
    "ShopStats",
    "SupportRequest",
    "SupportService",
    "UserOverview",
    "WindowStats",
    "check_health",
    "check_setup",
    "export_range",
    "prune",
    "shop_stats",
    "to_csv",
    "url_password",
]
