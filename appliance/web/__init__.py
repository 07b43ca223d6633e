"""Pages: the shell every page shares (classification banners, identity, sign-out), home pages, policy CSS."""
