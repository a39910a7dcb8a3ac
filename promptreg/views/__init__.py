"""Dashboard views: thin function views that validate a form, call one service, render."""
