"""Demo catalogue: a direct-selling company's health, beauty and household products."""

from __future__ import annotations

import random
from decimal import Decimal

from sqlalchemy import select

from core.db import db, quantize
from plugins.catalog.models import Category, Product

# (category, SKU prefix, unit, price range, [(brand or series, [product names])])
CATALOGUE = [
    ("营养保健", "NS", "瓶", (98, 498), ["蛋白粉", "复合维生素片", "钙镁片", "深海鱼油软胶囊", "维生素C咀嚼片",
                                       "叶酸片", "葡萄籽提取物胶囊", "B族维生素片", "锌硒宝片", "辅酶Q10软胶囊",
                                       "益生菌粉", "大豆磷脂软胶囊", "铁叶酸片", "螺旋藻片"]),
    ("美容护肤", "SK", "支", (68, 688), ["玻尿酸保湿精华液", "水润洁面乳", "焕颜紧致面霜", "修护爽肤水",
                                       "烟酰胺亮肤乳液", "眼部精华霜",
                                       "清透防晒乳SPF50", "补水面膜(10片装)", "氨基酸卸妆水",
                                       "抗皱精华油", "舒缓修护喷雾", "美白淡斑精华"]),
    ("彩妆香氛", "MU", "件", (59, 399), ["丝绒哑光口红", "轻薄气垫粉底", "持久眼线笔", "自然睫毛膏", "柔光散粉",
                                       "花漾淡香水", "腮红盘", "眉粉笔"]),
    ("个人护理", "PC", "瓶", (29, 168), ["草本洗发露", "柔顺护发素", "沐浴露", "美白牙膏", "漱口水",
                                       "护手霜", "止汗露", "儿童洗发沐浴二合一", "竹盐牙膏", "头皮护理精华"]),
    ("家居清洁", "HC", "瓶", (19, 128), ["浓缩洗衣液", "多功能清洁剂", "洗洁精", "厨房重油污净", "衣物柔顺剂",
                                       "玻璃清洁剂", "除菌地板清洁液", "果蔬清洗剂", "马桶清洁凝胶", "洗衣凝珠"]),
    ("厨具水具", "KW", "套", (88, 1980), ["不粘锅套装", "净水器滤芯", "家用净水器", "真空保温杯", "304不锈钢炒锅",
                                        "陶瓷刀具套装", "破壁料理机", "空气炸锅"]),
    ("健康食品", "HF", "盒", (39, 299), ["高纤燕麦片", "无糖黑芝麻糊", "红枣枸杞茶", "即食燕窝", "五谷杂粮粉",
                                       "低脂代餐奶昔", "坚果礼盒", "有机绿茶"]),
    ("母婴用品", "MB", "罐", (49, 398), ["婴儿润肤乳", "儿童营养奶粉", "婴儿洗衣液", "宝宝护臀膏", "儿童钙铁锌咀嚼片",
                                       "孕妇DHA软胶囊", "婴儿湿巾(80抽)"]),
]
SERIES = ["", "臻享", "焕活", "优选", "经典", "尊享", "植萃", "臻选"]
SIZES = {"瓶": ["250ml", "500ml", "60粒", "120粒", "1L"], "支": ["30ml", "50ml", "100ml"],
         "件": ["", "3.5g", "12g"], "套": ["", "三件套", "五件套"], "盒": ["500g", "20袋", "礼盒装"],
         "罐": ["400g", "800g", "120片"]}


def populate(scale: float, seed: int) -> int:
    """Create 8 categories and ``100 × scale`` products (SKUs that exist are kept, so a second
    run adds nothing). Returns the number of products created. Commits."""
    rng = random.Random(seed)
    target = max(int(round(100 * scale)), 1)
    cats: dict[str, Category] = {}
    for name, *_rest in CATALOGUE:
        cat = db.session.scalar(select(Category).where(Category.name == name))
        if cat is None:
            cat = Category(name=name)
            db.session.add(cat)
        cats[name] = cat
    db.session.flush()
    existing = set(db.session.scalars(select(Product.sku)))
    made = created = 0
    counters = {prefix: 0 for _n, prefix, *_r in CATALOGUE}
    names_used: set[str] = set()
    i = 0
    while made < target and i < target * 20:
        cat_name, prefix, unit, (low, high), items = CATALOGUE[i % len(CATALOGUE)]
        i += 1
        counters[prefix] += 1
        sku = f"{prefix}-{counters[prefix]:04d}"
        base = items[(counters[prefix] - 1) % len(items)]
        series = SERIES[((counters[prefix] - 1) // len(items)) % len(SERIES)]
        size = rng.choice(SIZES[unit])
        name = f"{series}{base}" + (f" {size}" if size else "")
        if name in names_used:
            name = f"{name} ({sku})"
        names_used.add(name)
        if sku in existing:  # made by an earlier run: counts toward the target
            made += 1
            continue
        price = Decimal(rng.randrange(low, high + 1)) - Decimal("0.10") * rng.choice([0, 1, 2])
        cost = quantize(price * Decimal(rng.randrange(28, 55)) / 100)
        db.session.add(Product(sku=sku, name=name, category=cats[cat_name], unit=unit,
                               price=quantize(price), cost=cost, active=rng.random() > 0.03,
                               barcode=f"69{rng.randrange(10**10, 10**11)}", custom={}))
        made += 1
        created += 1
    db.session.commit()
    return created
