"""stub"""

from minicloud.console.page import Route

ROUTES: list[Route] = []
