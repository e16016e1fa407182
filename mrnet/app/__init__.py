"""The web app's server side: what it shows, the Cases browser, scores, flags, login, the sets it serves."""
