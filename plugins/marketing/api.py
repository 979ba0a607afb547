"""REST: ``/api/v1/campaigns``, ``/api/v1/promotions``, ``/api/v1/coupons``."""

from __future__ import annotations

from datetime import datetime

from flask import Response
from flask.views import MethodView

from core.api import Blueprint, apply_sort, page_body, page_of, page_schema
from core.api import serialized as _json
from core.auth import permission_required, require
from core.db import db
from core.errors import NotFound, ValidationError
from core.export import csv_bytes
from core.scope import dump, get_for, select_for
from plugins.crm.public import Customer
from plugins.marketing import services
from plugins.marketing.models import Campaign, Coupon, Promotion
from plugins.marketing.schemas import (
    AUDIENCE_COLUMNS,
    AudienceArgs,
    AudienceOut,
    CampaignArgs,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    CouponArgs,
    CouponBatchOut,
    CouponIn,
    CouponOut,
    CouponPatch,
    EffectivenessOut,
    PromotionArgs,
    PromotionIn,
    PromotionOut,
    PromotionPatch,
)

campaigns_blp = Blueprint("marketing_campaigns", __name__, url_prefix="/campaigns",
                          description="Marketing campaigns, their effect and target lists")
promotions_blp = Blueprint("marketing_promotions", __name__, url_prefix="/promotions",
                           description="Promotions: percent/amount off, 满减 tiers, gifts")
coupons_blp = Blueprint("marketing_coupons", __name__, url_prefix="/coupons",
                        description="Coupon codes with total and per-customer limits")

C_READ, C_WRITE = "marketing.campaign.read", "marketing.campaign.write"
P_READ, P_WRITE = "marketing.promotion.read", "marketing.promotion.write"
COUPON_WRITE = "marketing.coupon.write"
REPORT, EXPORT = "marketing.report.read", "marketing.list.export"



# ---------------------------------------------------------------------------
# Campaigns
# ---------------------------------------------------------------------------


@campaigns_blp.route("")
class CampaignsView(MethodView):
    @permission_required(C_READ)
    @campaigns_blp.arguments(CampaignArgs, location="query")
    @campaigns_blp.response(200, page_schema(CampaignOut))
    def get(self, args):
        """List campaigns (search q, status, channel, active_on)"""
        user = require(C_READ)
        stmt = campaign_filters(select_for(Campaign, C_READ, user), args)
        rows, total = page_of(apply_sort(stmt, Campaign, args.get("sort"), default="-starts_on"), args)
        return _json(page_body(dump(CampaignOut(), rows, Campaign, user, many=True), total, args))

    @permission_required(C_WRITE)
    @campaigns_blp.arguments(CampaignIn)
    @campaigns_blp.response(201, CampaignOut)
    def post(self, data):
        """Create a campaign"""
        user = require(C_WRITE)
        campaign = services.save_campaign(None, data)
        db.session.commit()
        return _json(dump(CampaignOut(), campaign, Campaign, user), 201)


def campaign_filters(stmt, args):
    if args.get("q"):
        stmt = stmt.where(Campaign.name.icontains(args["q"].strip(), autoescape=True))
    if args.get("status"):
        stmt = stmt.where(Campaign.status == args["status"])
    if args.get("channel"):
        stmt = stmt.where(Campaign.channel == args["channel"])
    if args.get("active_on"):
        d = args["active_on"]
        stmt = stmt.where(Campaign.starts_on <= d, Campaign.ends_on >= d)
    return stmt


@campaigns_blp.route("/<int:campaign_id>")
class CampaignView(MethodView):
    @campaigns_blp.response(200, CampaignOut)
    def get(self, campaign_id):
        """One campaign"""
        user = require(C_READ)
        return _json(dump(CampaignOut(), get_for(Campaign, campaign_id, C_READ, user), Campaign, user))

    @permission_required(C_WRITE)
    @campaigns_blp.arguments(CampaignPatch(partial=True))
    @campaigns_blp.response(200, CampaignOut)
    def patch(self, data, campaign_id):
        """Change a campaign (status: draft, active, paused, ended)"""
        user = require(C_WRITE)
        campaign = get_for(Campaign, campaign_id, C_WRITE, user)
        services.save_campaign(campaign, data)
        db.session.commit()
        return _json(dump(CampaignOut(), campaign, Campaign, user))

    @campaigns_blp.response(204)
    def delete(self, campaign_id):
        """Delete a campaign no order used (409 otherwise: end it)"""
        user = require(C_WRITE)
        services.delete_campaign(get_for(Campaign, campaign_id, C_WRITE, user))
        db.session.commit()
        return "", 204


@campaigns_blp.route("/<int:campaign_id>/effectiveness")
class EffectivenessView(MethodView):
    @campaigns_blp.response(200, EffectivenessOut)
    def get(self, campaign_id):
        """Orders, revenue, discount given, customers reached, AOV promoted vs other orders"""
        user = require(REPORT)
        campaign = get_for(Campaign, campaign_id, REPORT, user)
        return _json(services.effectiveness(campaign, user))


@campaigns_blp.route("/<int:campaign_id>/audience")
class AudienceView(MethodView):
    @permission_required(C_READ)
    @campaigns_blp.arguments(AudienceArgs, location="query")
    @campaigns_blp.response(200, page_schema(AudienceOut))
    def get(self, args, campaign_id):
        """Consenting customers of the campaign's segment; ?format=csv exports them all"""
        user = require(C_READ)
        campaign = get_for(Campaign, campaign_id, C_READ, user)
        stmt = services.audience_query(campaign, user, args.get("q"))
        if args.get("format") == "csv":
            require(EXPORT)
            return audience_csv(campaign, stmt, user)
        rows, total = page_of(stmt, args)
        return _json(page_body(dump(AudienceOut(), rows, Customer, user, many=True), total, args))


def audience_csv(campaign: Campaign, stmt, user) -> Response:
    """All target customers as CSV: masked as the user sees them, formula cells neutralised."""
    rows = db.session.scalars(stmt).all()
    data = dump(AudienceOut(), rows, Customer, user, many=True, channel=f"export campaign {campaign.id} audience")
    body = csv_bytes([label for _k, label in AUDIENCE_COLUMNS],
                     [[r.get(k) for k, _l in AUDIENCE_COLUMNS] for r in data])
    db.session.commit()  # keep the personal-data access log of an unmasked export
    stamp = datetime.now().strftime("%Y%m%d")
    return Response(body, mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="campaign-{campaign.id}-audience-{stamp}.csv"'})


# ---------------------------------------------------------------------------
# Promotions
# ---------------------------------------------------------------------------


@promotions_blp.route("")
class PromotionsView(MethodView):
    @permission_required(P_READ)
    @promotions_blp.arguments(PromotionArgs, location="query")
    @promotions_blp.response(200, page_schema(PromotionOut))
    def get(self, args):
        """List promotions (search q, campaign_id, kind, active)"""
        user = require(P_READ)
        stmt = promotion_filters(select_for(Promotion, P_READ, user), args)
        rows, total = page_of(apply_sort(stmt, Promotion, args.get("sort"), default="-priority"), args)
        return _json(page_body(dump(PromotionOut(), rows, Promotion, user, many=True), total, args))

    @permission_required(P_WRITE)
    @promotions_blp.arguments(PromotionIn)
    @promotions_blp.response(201, PromotionOut)
    def post(self, data):
        """Create a promotion"""
        user = require(P_WRITE)
        promo = services.save_promotion(None, data)
        db.session.commit()
        return _json(dump(PromotionOut(), promo, Promotion, user), 201)


def promotion_filters(stmt, args):
    if args.get("q"):
        stmt = stmt.where(Promotion.name.icontains(args["q"].strip(), autoescape=True))
    if args.get("campaign_id") is not None:
        stmt = stmt.where(Promotion.campaign_id == args["campaign_id"])
    if args.get("kind"):
        stmt = stmt.where(Promotion.kind == args["kind"])
    if args.get("active") is not None:
        stmt = stmt.where(Promotion.active.is_(args["active"]))
    return stmt


@promotions_blp.route("/<int:promotion_id>")
class PromotionView(MethodView):
    @promotions_blp.response(200, PromotionOut)
    def get(self, promotion_id):
        """One promotion"""
        user = require(P_READ)
        return _json(dump(PromotionOut(), get_for(Promotion, promotion_id, P_READ, user), Promotion, user))

    @permission_required(P_WRITE)
    @promotions_blp.arguments(PromotionPatch(partial=True))
    @promotions_blp.response(200, PromotionOut)
    def patch(self, data, promotion_id):
        """Change a promotion"""
        user = require(P_WRITE)
        promo = get_for(Promotion, promotion_id, P_WRITE, user)
        services.save_promotion(promo, data)
        db.session.commit()
        return _json(dump(PromotionOut(), promo, Promotion, user))

    @promotions_blp.response(204)
    def delete(self, promotion_id):
        """Delete a promotion no order used (409 otherwise: deactivate it)"""
        user = require(P_WRITE)
        services.delete_promotion(get_for(Promotion, promotion_id, P_WRITE, user))
        db.session.commit()
        return "", 204


# ---------------------------------------------------------------------------
# Coupons
# ---------------------------------------------------------------------------


@coupons_blp.route("")
class CouponsView(MethodView):
    @permission_required(P_READ)
    @coupons_blp.arguments(CouponArgs, location="query")
    @coupons_blp.response(200, page_schema(CouponOut))
    def get(self, args):
        """List coupons (promotion_id, code, batch, active)"""
        user = require(P_READ)
        stmt = select_for(Coupon, P_READ, user)
        if args.get("promotion_id") is not None:
            stmt = stmt.where(Coupon.promotion_id == args["promotion_id"])
        if args.get("code"):
            stmt = stmt.where(Coupon.code.icontains(args["code"].strip().upper(), autoescape=True))
        if args.get("batch"):
            stmt = stmt.where(Coupon.batch == args["batch"])
        if args.get("active") is not None:
            stmt = stmt.where(Coupon.active.is_(args["active"]))
        rows, total = page_of(apply_sort(stmt, Coupon, args.get("sort")), args)
        return _json(page_body(dump(CouponOut(), rows, Coupon, user, many=True), total, args))

    @permission_required(COUPON_WRITE)
    @coupons_blp.arguments(CouponIn)
    @coupons_blp.response(201, CouponBatchOut)
    def post(self, data):
        """Generate coupon codes: one given ``code`` or ``count`` random ones"""
        user = require(COUPON_WRITE)
        promo = db.session.get(Promotion, data["promotion_id"])
        if promo is None:
            raise NotFound(f"No promotion with id {data['promotion_id']}.",
                           fields={"promotion_id": ["Unknown promotion."]})
        if data.get("code") and data.get("count", 1) != 1:
            raise ValidationError("Give either a code or a count.", fields={"count": ["Only with random codes."]})
        made = services.generate_coupons(
            promo, count=data.get("count", 1), code=data.get("code"), prefix=data.get("prefix", ""),
            length=data.get("length"), usage_limit=data.get("usage_limit", 1),
            per_customer_limit=data.get("per_customer_limit", 1))
        db.session.commit()
        return _json({"count": len(made), "batch": made[0].batch if made else "",
                      "items": dump(CouponOut(), made, Coupon, user, many=True)}, 201)


@coupons_blp.route("/<int:coupon_id>")
class CouponView(MethodView):
    @coupons_blp.response(200, CouponOut)
    def get(self, coupon_id):
        """One coupon with its uses"""
        user = require(P_READ)
        return _json(dump(CouponOut(), get_for(Coupon, coupon_id, P_READ, user), Coupon, user))

    @permission_required(COUPON_WRITE)
    @coupons_blp.arguments(CouponPatch)
    @coupons_blp.response(200, CouponOut)
    def patch(self, data, coupon_id):
        """Disable/enable a coupon or change its limits (never below the uses so far)"""
        user = require(COUPON_WRITE)
        coupon = get_for(Coupon, coupon_id, COUPON_WRITE, user)
        services.update_coupon(coupon, data)
        db.session.commit()
        return _json(dump(CouponOut(), coupon, Coupon, user))

