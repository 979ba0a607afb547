"""Custom fields: admins add typed fields to customers, orders, products … in config/custom_fields.yaml."""
