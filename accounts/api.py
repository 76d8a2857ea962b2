"""Shared pieces of the /v1 API: the success envelope, pagination and the base view."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organization

MAX_LIMIT = 100
DEFAULT_LIMIT = 50
# Beyond what any page could reach, and inside every database's integer range.
MAX_OFFSET = 2**31 - 1


def ok(message: str, data=None, *, status: int = 200, **extra) -> Response:
    body = {"status": True, "message": message}
    body.update(extra)
    if data is not None or not extra:
        body["data"] = data
    return Response(body, status=status)


class PageQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)


def paginate(queryset: QuerySet, params) -> tuple[list, dict]:
    """Slice a queryset by validated limit/offset; returns the page and its meta."""
    page = PageQuery(data={k: params[k] for k in ("limit", "offset") if k in params})
    page.is_valid(raise_exception=True)
    limit, offset = page.validated_data["limit"], page.validated_data["offset"]
    total = queryset.count()
    items = list(queryset[offset : offset + limit])
    return items, {"total": total, "limit": limit, "offset": offset}


def request_object(request) -> dict:
    """The JSON object a POST/PATCH sent; an empty body reads as {}. Any other JSON value
    (`[]`, `false`, `0`, `""`, `null`) is a 400: every write of this API takes an object."""
    data = request.data
    if not isinstance(data, dict):
        raise serializers.ValidationError(
            {"non_field_errors": ["The request body must be a JSON object."]}
        )
    return data


class StrictSerializerMixin:
    """Rejects fields the serializer does not know (a 400 naming them)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class OrgAPIView(APIView):
    """Base for API-key views: every object is scoped to the key's organization."""

    @property
    def organization(self) -> Organization:
        return self.request.auth.organization
