"""Showing runs to people: the live board or plain lines, and the story graph as a drawing."""
