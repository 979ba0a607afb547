"""Sales orders: lines priced from the catalogue, idempotent creation, a workflow-driven
lifecycle (draft → confirmed → paid → shipped → completed, cancel, return), payments,
shipments, after-sales returns, import/export and sales reports."""
