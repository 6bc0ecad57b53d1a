"""The images pages of the dashboard (the home page is routed at the site root)."""

from django.urls import URLPattern, path

from images import views

urlpatterns: list[URLPattern] = [
    path("upload/", views.upload_page, name="upload-page"),
    path("images/", views.gallery_page, name="gallery-page"),
    path("images/<uuid:image_id>/", views.image_page, name="image-page"),
    path("images/<uuid:image_id>/delete/", views.image_delete_page, name="image-delete-page"),
]
