"""Marketing: campaigns, promotions (percent, amount, 满减, gifts), coupons and their effect."""
