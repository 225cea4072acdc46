"""Names of the events the outgoing webhooks carry."""

MEMBER_JOINED = "member_joined"
MEMBER_LEFT = "member_left"
AD_REMOVED = "ad_removed"
BROADCAST_REPORT = "broadcast_report"
EVENT_NAMES = (MEMBER_JOINED, MEMBER_LEFT, AD_REMOVED, BROADCAST_REPORT)
