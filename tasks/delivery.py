"""Sending tasks: prepare a run, drain its planned rows in batches, one task run per batch."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from qunyun import ledger, sending
from qunyun.channels.wecom import WeComCustomer, WeComRobot
from qunyun.errors import BadInput
from qunyun.pacing import SlidingWindowPacer
from tasks.context import RunContext

ROBOT_BATCH_FLOOR = 2_000
CUSTOMER_BATCH_FLOOR = 20_000


@task(name="发送准备 prepare-send", cache_policy=NO_CACHE)
def prepare_send(job: str, logical_date: date, steps: list[str],
                 resolve_unknown: str = "keep") -> dict:
    """Settle what an earlier run of these steps left behind, check every secret, and cut the
    remaining work in batches."""
    ctx = RunContext.current()
    logger = get_run_logger()
    run = ledger.Run(job, logical_date, tuple(steps))
    interrupted = ledger.mark_interrupted(ctx.engine, run)
    if interrupted:
        logger.warning("上次发送中断，%d 条结果未知，未重发 (interrupted rows marked unknown)",
                       interrupted)
    if resolve_unknown != "keep":
        n = ledger.resolve_unknown(ctx.engine, run, resolve_unknown)
        logger.info("按运营决定处理结果未知的 %d 条 (unknown rows resolved): %s", n, resolve_unknown)
    counts = ledger.status_counts(ctx.engine, run)
    robot = sending.robot_batches(ctx.engine, run,
                                  sending.batch_size_for(counts["planned"], ROBOT_BATCH_FLOOR))
    customer = sending.customer_batches(
        ctx.engine, run, sending.batch_size_for(counts["planned"], CUSTOMER_BATCH_FLOOR))
    # Every secret is resolved before the first request, so a missing one sends nothing.
    if robot:
        _channel(ctx, "wecom_robot")
        sending.resolve_all(ctx.secrets, sending.required_secrets(ctx.engine, run))
    if customer:
        ctx.secrets.get(_customer_channel(ctx).corp_secret)
    return {"robot": robot, "customer": customer, "interrupted": interrupted}


def _channel(ctx: RunContext, kind: str):
    for channel in ctx.channels.channels.values():
        if channel.kind == kind:
            return channel
    raise BadInput(f"config/channels.yaml: 没有配置 {kind} 渠道 (no channel of kind {kind})")


def _customer_channel(ctx: RunContext):
    channel = _channel(ctx, "wecom_customer")
    if not channel.corp_id or not channel.corp_secret:
        raise BadInput("config/channels.yaml: wecom_customer 需要 corp_id 和 corp_secret (密钥名)")
    return channel


@task(name="群机器人发送 send-group-posts", cache_policy=NO_CACHE)
def send_group_posts(job: str, logical_date: date, steps: list[str],
                     id_range: tuple[int, int]) -> dict:
    ctx = RunContext.current()
    channel = _channel(ctx, "wecom_robot")
    pacer = SlidingWindowPacer(limit=channel.per_robot_per_minute)
    for key, ages in sending.recent_robot_sends(ctx.engine, pacer.window).items():
        pacer.seed(key, ages)
    robot = WeComRobot(channel.base_url, channel.timeout_seconds, channel.concurrency)
    try:
        sender = sending.RobotSender(ctx.engine, robot, ctx.secrets, pacer, channel.concurrency)
        stats = sender.send_range(ledger.Run(job, logical_date, tuple(steps)), *id_range)
    finally:
        robot.close()
    get_run_logger().info("群发送批次 (robot batch) %s: 成功 sent %d, 失败 failed %d, 未知 unknown %d,"
                          " 重试 retried %d", id_range, stats.sent, stats.failed, stats.unknown,
                          stats.retried)
    _warn_deferred(stats)
    return {"sent": stats.sent, "failed": stats.failed, "unknown": stats.unknown,
            "deferred": stats.deferred}


def _warn_deferred(stats: sending.SendStats) -> None:
    if stats.deferred:
        get_run_logger().warning(
            "%d 条消息因无法连接平台未发出，仍为待发送；恢复后重跑同一日期即可续发 "
            "(provider unreachable: rows stay planned; re-run the date to resume)", stats.deferred)


@task(name="客户群发 send-member-messages", cache_policy=NO_CACHE)
def send_member_messages(job: str, logical_date: date, steps: list[str],
                         senders: list[str]) -> dict:
    ctx = RunContext.current()
    channel = _customer_channel(ctx)
    client = WeComCustomer(channel.base_url, channel.corp_id, ctx.secrets.get(channel.corp_secret),
                           channel.timeout_seconds)
    try:
        run = ledger.Run(job, logical_date, tuple(steps))
        stats = sending.CustomerSender(ctx.engine, client).send_senders(run, senders)
    finally:
        client.close()
    get_run_logger().info("客户群发批次 (mass-message batch): 请求 requests %d, 成功 sent %d, "
                          "失败 failed %d, 未知 unknown %d", stats.requests, stats.sent,
                          stats.failed, stats.unknown)
    _warn_deferred(stats)
    return {"sent": stats.sent, "failed": stats.failed, "unknown": stats.unknown,
            "deferred": stats.deferred}
