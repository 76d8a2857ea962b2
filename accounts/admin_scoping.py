"""Admin helpers: staff users see and edit only their own organization's objects."""

from __future__ import annotations

from accounts.models import Organization


def user_organization(user) -> Organization | None:
    membership = getattr(user, "membership", None)
    return membership.organization if membership else None


class OrganizationScopedAdmin:
    """Mixin for ModelAdmins of models with an `organization` (or a path to one)."""

    organization_path = "organization"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        organization = user_organization(request.user)
        if organization is None:
            return queryset.none()
        return queryset.filter(**{self.organization_path: organization})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            organization = user_organization(request.user)
            related = db_field.related_model
            if related is Organization:
                kwargs["queryset"] = Organization.objects.filter(
                    pk=getattr(organization, "pk", None)
                )
            elif any(f.name == "organization" for f in related._meta.get_fields()):
                kwargs["queryset"] = related.objects.filter(organization=organization)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
