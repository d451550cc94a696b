"""Chinese labels for the codes stored in the database: what operators read."""

GROUP_KIND_LABELS = {"interest": "兴趣群", "seeding": "种草群", "superfan": "铁粉群", "vip": "VIP群"}
STAGE_LABELS = {"prospect": "潜客", "customer": "用户", "member": "会员", "koc": "KOC"}
ACTIVITY_LABELS = {
    "new": "新人期", "active": "活跃", "silent": "沉默", "at_risk": "流失预警", "churned": "流失",
}
FAN_LEVEL_LABELS = {
    "passerby": "路人粉", "friendly": "好感粉", "devoted": "真爱粉", "advocate": "代言粉",
}
WEEKDAY_LABELS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
STATUS_LABELS = {
    "planned": "待发送", "sending": "发送中", "sent": "已发送", "failed": "失败",
    "unknown": "结果未知", "suppressed": "已拦截",
}
REASON_LABELS = {
    "opted_out": "已退订", "blacklisted": "黑名单", "staff": "员工/气氛组", "suppression_list": "免打扰名单",
    "member_daily_cap": "超出每人每日上限", "member_weekly_cap": "超出每人每周上限",
    "group_daily_cap": "超出每群每日上限", "quiet_hours": "免打扰时段", "no_sender": "无跟进人",
    "provider_fail_list": "平台拒收(当日已收过群发或非好友)", "provider_error": "平台错误",
    "connect_error": "无法连接平台", "interrupted": "发送中断", "timeout": "请求超时",
}
