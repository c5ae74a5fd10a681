"""Staff see each message of an appointment and where it stands, and may send one again. The
text itself is not kept, so it is not shown: it is rendered again when sent."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from creneau.notify import services
from creneau.notify.models import Message

FIELDS = [
    "created_at",
    "kind",
    "medium",
    "status",
    "attempts",
    "send_after",
    "next_attempt_at",
    "sent_at",
    "answer",
    "provider_reference",
]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = FIELDS[:-1]
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = _("messages to the patient")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "medium", "status", "attempts", "sent_at", "answer"]
    list_filter = ["status", "kind", "medium"]
    search_fields = ["public_id", "appointment__public_id"]
    date_hierarchy = "created_at"
    fields = ["appointment", "offer", *FIELDS, "useful_until"]
    readonly_fields = fields
    actions = ["resend"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Send again"))
    def resend(self, request, queryset):
        done = 0
        for message in queryset.select_related("appointment", "offer"):
            try:
                services.message_resend(message=message)
                done += 1
            except services.NotifyError as error:
                self.message_user(
                    request, f"{message.public_id}: {error.message}", level=messages.WARNING
                )
        if done:
            self.message_user(request, _("%(count)d message(s) queued again.") % {"count": done})
