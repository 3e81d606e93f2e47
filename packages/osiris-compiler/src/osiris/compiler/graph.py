"""The step graph: deterministic topological order and cycle reporting."""

from __future__ import annotations


def find_cycle(needs: dict[str, list[str]]) -> list[str] | None:
    """A cycle in the graph as a list of ids (first id repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in needs.get(node, []):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep in needs and dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in needs:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def topological_order(needs: dict[str, list[str]]) -> list[str]:
    """Steps ordered so each comes after everything it needs; ties keep declaration order.

    `needs` must be acyclic (check with `find_cycle` first).
    """
    order_index = {node: i for i, node in enumerate(needs)}
    remaining = {node: set(deps) for node, deps in needs.items()}
    done: list[str] = []
    while remaining:
        ready = [n for n, deps in remaining.items() if not deps]
        if not ready:
            raise ValueError("graph has a cycle")
        node = min(ready, key=order_index.__getitem__)
        done.append(node)
        del remaining[node]
        for deps in remaining.values():
            deps.discard(node)
    return done
