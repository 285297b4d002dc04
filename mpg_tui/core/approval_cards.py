"""How a permission request reads in chat, and how it reads once settled."""

from __future__ import annotations

from mpg_tui.core.permissions import PermissionDecision, PermissionRequest, cut
from mpg_tui.core.ports import ApprovalCard, CardChoice

ALLOW = "allow"
ALLOW_SESSION = "session"
DENY = "deny"
PLAN_CHARS = 1500
LABEL_CHARS = 80


def fence(text: str) -> str:
    """``text`` safe inside a code block: it can neither close the block nor mention anyone."""
    return text.replace("```", "`\u200b``").replace("@", "@\u200b")


def option_value(question: int, option: int) -> str:
    return f"q{question}o{option}"


def parse_option(value: str) -> tuple[int, int] | None:
    if not value.startswith("q") or "o" not in value:
        return None
    question, _, option = value[1:].partition("o")
    if not (question.isdigit() and option.isdigit()):
        return None
    return int(question), int(option)


def card_for(request_id: str, request: PermissionRequest, requester: str, timeout_s: float) -> ApprovalCard:
    minutes = max(1, round(timeout_s / 60))
    by = f" (asked for by {fence(requester)})" if requester else ""
    if request.kind == "question":
        lines = [f"❓ **Claude has a question**{by}"]
        for number, question in enumerate(request.questions):
            lines.append(f"**{fence(cut(question.text, 300))}**")
            for n, option in enumerate(question.options):
                about = f" — {fence(cut(option.description, 120))}" if option.description else ""
                lines.append(f"{n + 1}. {fence(cut(option.label, LABEL_CHARS))}{about}")
            if number >= 3:
                break
        lines.append(f"Pick an answer below, or reply in the thread. Unanswered in {minutes} min, it is declined.")
        choices = tuple(
            CardChoice(option_value(qi, oi), cut(option.label, LABEL_CHARS), "neutral", row=qi)
            for qi, question in enumerate(request.questions[:4])
            for oi, option in enumerate(question.options[:4])
        )
        return ApprovalCard(request_id, "\n".join(lines), (*choices, CardChoice(DENY, "Decline", "deny", row=4)))
    if request.kind == "plan":
        text = (
            f"📋 **Claude wants to leave plan mode with this plan**{by}\n"
            f"```md\n{fence(cut(request.plan or request.summary, PLAN_CHARS))}\n```\n"
            f"Unanswered in {minutes} min, the plan is rejected."
        )
        choices = (CardChoice(ALLOW, "Approve plan", "allow"), CardChoice(DENY, "Keep planning", "deny"))
        return ApprovalCard(request_id, text, choices)
    text = (
        f"🔐 **Claude wants to use {fence(request.tool_name)}**{by}\n"
        f"```\n{fence(request.summary)}\n```\n"
        f"Unanswered in {minutes} min, it is denied."
    )
    choices = (
        CardChoice(ALLOW, "Allow once", "allow"),
        CardChoice(ALLOW_SESSION, "Allow for this session", "neutral"),
        CardChoice(DENY, "Deny", "deny"),
    )
    return ApprovalCard(request_id, text, choices)


def verdict_text(request: PermissionRequest, decision: PermissionDecision, reason: str) -> str:
    who = fence(decision.decided_by) or "someone"
    if reason == "timeout":
        return "⏱️ Nobody answered in time: denied."
    if reason == "withdrawn":
        return "↩️ Withdrawn: the run stopped waiting for this."
    if request.kind == "question" and decision.allowed:
        answers = "; ".join(fence(cut(a, 200)) for a in decision.answers.values())
        return f"💬 Answered by {who}: {answers}"
    if decision.outcome == "allow_session":
        return f"✅ Allowed for this session by {who}."
    if decision.allowed:
        return f"✅ {'Plan approved' if request.kind == 'plan' else 'Allowed once'} by {who}."
    return f"⛔ {'Declined' if request.kind == 'question' else 'Denied'} by {who}."
