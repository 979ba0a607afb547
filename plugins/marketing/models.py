"""Marketing tables: campaigns, promotions, coupons and coupon redemptions.

``segment_id`` refers to ``crm_segment`` and ``order_id``/``customer_id`` of a
redemption to orders/crm rows; they are plain integers (no foreign key) so a
segment or a draft order can be deleted in its own plugin without touching ours.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import AuditedMixin, JSONType, Model, Money, db

ZERO = Decimal("0.00")

CAMPAIGN_STATUSES = ("draft", "active", "paused", "ended")
CHANNELS = ("sms", "wechat", "phone", "email", "store", "online", "event", "other")


class Campaign(Model, AuditedMixin, db.Model):
    """A marketing campaign: dates, channel, budget, target segment; groups promotions."""

    __tablename__ = "marketing_campaign"
    __label__ = "campaign"

    name: Mapped[str] = mapped_column(String(120), index=True)
    channel: Mapped[str] = mapped_column(String(20), default="online")
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    budget: Mapped[Decimal] = Money(default=ZERO)
    segment_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(12), default="draft", index=True)
    description: Mapped[str | None] = mapped_column(Text)

    promotions: Mapped[list[Promotion]] = relationship(back_populates="campaign",
                                                       order_by="Promotion.id")

    def __repr__(self) -> str:
        return f"<Campaign {self.id} {self.name}>"


class Promotion(Model, AuditedMixin, db.Model):
    """A pricing rule (percent, amount, 满减 tiers, gift), in a campaign or standalone."""

    __tablename__ = "marketing_promotion"
    __label__ = "promotion"

    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("marketing_campaign.id", ondelete="RESTRICT"), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(12))
    scope: Mapped[str] = mapped_column(String(8), default="order")
    percent: Mapped[Decimal] = mapped_column(Numeric(5, 2, asdecimal=True), default=ZERO)
    amount: Mapped[Decimal] = Money(default=ZERO)
    tiers: Mapped[list] = mapped_column(JSONType, default=list)  # [{"threshold": "300.00", "discount": "30.00"}]
    buy_quantity: Mapped[int] = mapped_column(Integer, default=0)
    gift_product_id: Mapped[int | None] = mapped_column(
        ForeignKey("catalog_product.id", ondelete="RESTRICT"), nullable=True)
    gift_quantity: Mapped[int] = mapped_column(Integer, default=1)
    gift_repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    product_ids: Mapped[list] = mapped_column(JSONType, default=list)
    category_ids: Mapped[list] = mapped_column(JSONType, default=list)
    customer_tiers: Mapped[list] = mapped_column(JSONType, default=list)
    customer_tags: Mapped[list] = mapped_column(JSONType, default=list)
    segment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    starts_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    min_spend: Mapped[Decimal] = Money(default=ZERO)
    stackable: Mapped[bool] = mapped_column(Boolean, default=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    requires_coupon: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    description: Mapped[str | None] = mapped_column(Text)

    campaign: Mapped[Campaign | None] = relationship(back_populates="promotions")

    def __repr__(self) -> str:
        return f"<Promotion {self.id} {self.kind} {self.name}>"


class Coupon(Model, AuditedMixin, db.Model):
    """A code unlocking a promotion; ``used`` is counted atomically against ``usage_limit``."""

    __tablename__ = "marketing_coupon"
    __label__ = "coupon"

    promotion_id: Mapped[int] = mapped_column(ForeignKey("marketing_promotion.id", ondelete="CASCADE"),
                                              index=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # stored upper-case
    usage_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: unlimited
    per_customer_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    used: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    batch: Mapped[str | None] = mapped_column(String(40), index=True)

    promotion: Mapped[Promotion] = relationship()

    def __repr__(self) -> str:
        return f"<Coupon {self.code} {self.used}/{self.usage_limit}>"


class CouponRedemption(Model, db.Model):
    """One use of a coupon by an order; ``released_at`` set when the use was given back."""

    __tablename__ = "marketing_coupon_redemption"
    __label__ = "coupon redemption"

    coupon_id: Mapped[int] = mapped_column(ForeignKey("marketing_coupon.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(Integer, index=True)
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)
    release_reason: Mapped[str | None] = mapped_column(String(40))

    coupon: Mapped[Coupon] = relationship()

    __table_args__ = (
        Index("ix_marketing_coupon_redemption_coupon_customer", "coupon_id", "customer_id"),
    )


MODELS = [Campaign, Promotion, Coupon, CouponRedemption]
