"""Users, roles, clearances and compartments; sign-in with consent banner, lockout and TOTP; sessions and API
tokens. Every change to an account is an action with its audit record; nothing here decides access (that is
`appliance.access`), it only supplies the subject's attributes."""
