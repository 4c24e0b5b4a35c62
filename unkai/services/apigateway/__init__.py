"""Amazon API Gateway: REST APIs (``apigateway``), HTTP and WebSocket APIs
(``apigatewayv2``), the @connections management API, and the data plane serving them."""

from unkai.services.apigateway.management import ManagementApi
from unkai.services.apigateway.service import ApiGateway
from unkai.services.apigateway.servicev2 import ApiGatewayV2

SERVICES = [ApiGateway, ApiGatewayV2, ManagementApi]
