"""The pipeline in the admin beyond the list: its totals row and a board by stage.

- The list shows the totals of what it lists (every page of the filtered list, not just this one),
  unweighted and weighted, from ``revenue.selectors.pipeline.pipeline_totals``.
- The board (``board/``) has one column per open stage and a card per open opportunity of the
  tenant. Dropping a card on another column posts to ``<id>/move/``, which changes the stage through
  ``revenue.services.opportunity_update`` (so the opportunity is touched and its History records who
  moved it). Only those who may change the opportunity may move it (403 otherwise); a won or lost
  deal is not moved (409), and won and lost are not columns: they stay the list's actions, which
  ask for what they need (winning creates the contract, losing asks why).
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from customers.admin_base import request_tenant
from revenue import services
from revenue.models import Opportunity
from revenue.selectors.common import MissingExchangeRate
from revenue.selectors.pipeline import pipeline_totals


class PipelineBoardMixin:
    """For ``OpportunityAdmin``: the totals row of the list, the board and its move endpoint."""

    change_list_template = "admin/revenue/opportunity/change_list.html"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("board/", self.admin_site.admin_view(self.board_view), name="%s_%s_board" % info),
            path("<path:object_id>/move/", self.admin_site.admin_view(require_POST(self.move_view)),
                 name="%s_%s_move" % info),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        tenant = request_tenant(request)
        if context is not None and "cl" in context and tenant is not None:
            try:
                context["pipeline_totals"] = pipeline_totals(tenant=tenant, opportunities=context["cl"].queryset)
            except MissingExchangeRate as exc:
                context["pipeline_totals_problem"] = str(exc)
        return response

    def board_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        opportunities = self.get_queryset(request).open().select_related("customer").order_by(
            "expected_close_on", "title", "pk")
        columns = {stage: [] for stage in Opportunity.OPEN_STAGES}
        for opportunity in opportunities:
            columns[opportunity.stage].append(opportunity)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Pipeline board"),
            "columns": [(stage, Opportunity.Stage(stage).label, cards) for stage, cards in columns.items()],
            "can_move": self.has_change_permission(request),
        }
        return TemplateResponse(request, "admin/revenue/opportunity/board.html", context)

    def move_view(self, request, object_id):
        opportunity = self.get_object(request, object_id)
        if not self.has_change_permission(request, opportunity):
            return JsonResponse({"error": _("Your role reads the pipeline; it does not change it.")}, status=403)
        stage = request.POST.get("stage", "")
        if stage not in Opportunity.OPEN_STAGES:
            return JsonResponse({"error": _("Move a card to an open stage; win or lose a deal from the list's "
                                            "actions.")}, status=400)
        if not opportunity.is_open:
            return JsonResponse({"error": _("“%(title)s” is closed (%(stage)s) and is not moved.") % {
                "title": opportunity.title, "stage": opportunity.get_stage_display().lower()}}, status=409)
        try:
            opportunity = services.opportunity_update(opportunity=opportunity, stage=stage)
        except ValidationError as exc:
            return JsonResponse({"error": " ".join(exc.messages)}, status=400)
        self.log_change(request, opportunity, [{"changed": {"fields": ["stage"]}}])
        return JsonResponse({"id": opportunity.pk, "stage": opportunity.stage,
                             "stage_display": opportunity.get_stage_display()})
