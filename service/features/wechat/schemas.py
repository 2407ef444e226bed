"""Response models of the WeChat channel's JSON API; extra keys allowed and unset ones left out, as in
service.adapters.http.schemas (the body is the route's dict as built)."""

from __future__ import annotations

from pydantic import Field

from service.adapters.http.schemas import ApiModel


class JssdkConfig(ApiModel):
    """The parameters of wx.config(), named as the JS-SDK expects them."""

    appId: str  # camelCase: the JS-SDK's own key names
    timestamp: int
    nonceStr: str
    signature: str
    jsApiList: list[str] = Field(description="the JS-SDK APIs the page may call")
