"""CRM: customers, contacts, follow-up tasks, purchase history, duplicates and merge,
segments, the public customer pool (公海) and sales leads."""
